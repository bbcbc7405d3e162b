#include "train/safetensors.h"

#include <cstring>

#include "common/error.h"
#include "common/files.h"
#include "common/json_io.h"

namespace flashnas {
namespace fs = std::filesystem;

namespace {
const std::map<torch::ScalarType, std::string>& dtype_names() {
  static const std::map<torch::ScalarType, std::string> m = {
      {torch::kFloat32, "F32"}, {torch::kFloat64, "F64"}, {torch::kBFloat16, "BF16"},
      {torch::kFloat16, "F16"}, {torch::kInt64, "I64"},   {torch::kInt32, "I32"}};
  return m;
}
}  // namespace

void save_safetensors(const fs::path& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> cpu;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto it = dtype_names().find(t.scalar_type());
    if (it == dtype_names().end()) throw Error("safetensors: unsupported dtype for " + name);
    auto c = t.detach().to(torch::kCPU).contiguous();
    const size_t nbytes = static_cast<size_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", it->second}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    cpu.push_back(c);
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');
  std::string out;
  out.reserve(8 + head.size() + offset);
  const uint64_t n = head.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += head;
  for (const auto& c : cpu) {
    out.append(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()) * c.element_size());
  }
  write_file_atomic(path, out);
}

std::map<std::string, torch::Tensor> load_safetensors(const fs::path& path,
                                                      std::map<std::string, std::string>* metadata) {
  const std::string data = read_file(path);
  const std::string name = path.string();
  if (data.size() < 8) throw InputError(name + ": too small to be a safetensors file");
  uint64_t n = 0;
  std::memcpy(&n, data.data(), 8);
  if (n > data.size() - 8) throw InputError(name + ": header length " + std::to_string(n) + " exceeds the file");
  const json header = parse_json(std::string_view(data).substr(8, n), name + " (safetensors header)");
  const size_t base = 8 + n;
  std::map<std::string, torch::Tensor> out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (metadata) *metadata = it.value().get<std::map<std::string, std::string>>();
      continue;
    }
    const json& e = it.value();
    torch::ScalarType dt = torch::kFloat32;
    bool found = false;
    for (const auto& [t, s] : dtype_names()) {
      if (s == e.at("dtype").get<std::string>()) {
        dt = t;
        found = true;
      }
    }
    if (!found) throw InputError(name + ": tensor " + it.key() + " has unsupported dtype " + e.at("dtype").dump());
    const auto shape = e.at("shape").get<std::vector<int64_t>>();
    const auto off = e.at("data_offsets").get<std::vector<uint64_t>>();
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dt));
    const size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (off.size() != 2 || off[1] - off[0] != nbytes || base + off[1] > data.size()) {
      throw InputError(name + ": tensor " + it.key() + " has data offsets that do not match its shape or the file");
    }
    std::memcpy(t.data_ptr(), data.data() + base + off[0], nbytes);
    out[it.key()] = t;
  }
  return out;
}

}  // namespace flashnas

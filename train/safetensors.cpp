#include "train/safetensors.h"

#include <cstring>
#include <optional>

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
  if (!header.is_object()) throw InputError(name + ": the safetensors header is not a JSON object");
  const size_t base = 8 + n;
  const uint64_t payload = data.size() - base;
  std::map<std::string, torch::Tensor> out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string where = name + ": tensor \"" + it.key() + "\"";
    const json& e = it.value();
    if (it.key() == "__metadata__") {
      if (!e.is_object()) throw InputError(name + ": \"__metadata__\" is not an object of strings");
      for (auto m = e.begin(); m != e.end(); ++m) {
        if (!m.value().is_string()) throw InputError(name + ": \"__metadata__\" field \"" + m.key() + "\" is not a string");
      }
      if (metadata) *metadata = e.get<std::map<std::string, std::string>>();
      continue;
    }
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets")) {
      throw InputError(where + " needs an object with \"dtype\", \"shape\" and \"data_offsets\"");
    }
    const json& jd = e["dtype"];
    std::optional<torch::ScalarType> dt;
    for (const auto& [t, s] : dtype_names()) {
      if (jd.is_string() && s == jd.get<std::string>()) dt = t;
    }
    if (!dt) throw InputError(where + " has unsupported dtype " + jd.dump() + " (F32, F64, BF16, F16, I64, I32)");
    // The shape and offsets are checked against the file before anything is
    // allocated, so a damaged header cannot ask for more memory than the file holds.
    const json& js = e["shape"];
    if (!js.is_array()) throw InputError(where + ": \"shape\" is not an array");
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (const auto& d : js) {
      if (!d.is_number_unsigned()) throw InputError(where + ": \"shape\" holds " + d.dump() + ", not a size");
      const uint64_t v = d.get<uint64_t>();
      if (v > payload) throw InputError(where + ": dimension " + std::to_string(v) + " exceeds the file's data");
      numel = v == 0 ? 0 : (numel > payload / v ? payload + 1 : numel * v);
      shape.push_back(static_cast<int64_t>(v));
    }
    const json& jo = e["data_offsets"];
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned()) {
      throw InputError(where + ": \"data_offsets\" is not two byte offsets");
    }
    const uint64_t begin = jo[0].get<uint64_t>(), end = jo[1].get<uint64_t>();
    const uint64_t elem = static_cast<uint64_t>(c10::elementSize(*dt));
    if (begin > end || end > payload || numel > payload || end - begin != numel * elem) {
      throw InputError(where + " has data offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                       "] that do not match its shape or the file (" + std::to_string(payload) + " data bytes)");
    }
    auto t = torch::empty(shape, torch::TensorOptions().dtype(*dt));
    if (numel) std::memcpy(t.data_ptr(), data.data() + base + begin, static_cast<size_t>(end - begin));
    out[it.key()] = t;
  }
  return out;
}

}  // namespace flashnas

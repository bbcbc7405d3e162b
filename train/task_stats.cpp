#include "train/task_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "common/error.h"

namespace flashnas {

json LengthStats::to_json() const { return json{{"p50", p50}, {"p90", p90}, {"p99", p99}, {"max", max}, {"mean", mean}}; }

json TaskStats::to_json() const {
  return json{{"records", records}, {"prompt_tokens", prompt.to_json()}, {"completion_tokens", completion.to_json()}};
}

int64_t percentile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(q / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

namespace {
LengthStats stats_of(std::vector<int64_t> v) {
  LengthStats s;
  double sum = 0;
  for (int64_t x : v) sum += static_cast<double>(x);
  s.mean = v.empty() ? 0 : sum / static_cast<double>(v.size());
  s.p50 = percentile(v, 50);
  s.p90 = percentile(v, 90);
  s.p99 = percentile(v, 99);
  s.max = v.empty() ? 0 : v.back();
  return s;
}
}  // namespace

TaskStats task_length_stats(const TokenFile& f) {
  if (!f.has_completion_mask()) {
    throw InputError(f.path().string() + ": plain text, not task data; length statistics and budgets need a token file "
                     "prepared from task records (.jsonl)");
  }
  std::vector<int64_t> prompt, completion;
  for (int64_t d = 0; d < f.num_docs(); ++d) {
    const int64_t c = f.doc_completion_tokens(d);
    completion.push_back(c);
    prompt.push_back(f.doc_end(d) - f.doc_begin(d) - c);
  }
  TaskStats s;
  s.records = f.num_docs();
  s.prompt = stats_of(std::move(prompt));
  s.completion = stats_of(std::move(completion));
  return s;
}

std::string suggest_budgets_toml(const TaskStats& s, double max_ms, const std::string& source, const std::string& prefix) {
  if (!(max_ms > 0) || !std::isfinite(max_ms)) {
    throw InputError("--suggest-budgets: the p90 call's latency limit in ms must be positive, got " + std::to_string(max_ms));
  }
  const double tail = max_ms * std::max(1.0, static_cast<double>(s.completion.p99) / static_cast<double>(std::max<int64_t>(1, s.completion.p90)));
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "# Budgets from %s (%lld records): prompt p90 %lld / p99 %lld tokens, completion p90 %lld / p99 %lld tokens.\n"
                "# The tail's limit is %.4g ms x (p99 / p90 completion tokens).\n"
                "[[budgets]]\nname = \"%s-p90\"\nworkload = \"batch=1,prompt=%lld,generate=%lld\"\nmax_ms = %.4g\n\n"
                "[[budgets]]\nname = \"%s-p99\"\nworkload = \"batch=1,prompt=%lld,generate=%lld\"\nmax_ms = %.4g\n",
                source.c_str(), static_cast<long long>(s.records), static_cast<long long>(s.prompt.p90),
                static_cast<long long>(s.prompt.p99), static_cast<long long>(s.completion.p90),
                static_cast<long long>(s.completion.p99), max_ms, prefix.c_str(), static_cast<long long>(std::max<int64_t>(1, s.prompt.p90)),
                static_cast<long long>(std::max<int64_t>(1, s.completion.p90)), max_ms, prefix.c_str(),
                static_cast<long long>(std::max<int64_t>(1, s.prompt.p99)), static_cast<long long>(std::max<int64_t>(1, s.completion.p99)),
                tail);
  return buf;
}

}  // namespace flashnas

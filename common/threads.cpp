#include "common/threads.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <algorithm>
#include <thread>

#include "common/error.h"

namespace flashnas {

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1, int(std::thread::hardware_concurrency()));
}

std::string threads_problem(int64_t n) {
  const int cpus = available_cpus();
  if (n >= 0 && n <= cpus) return "";
  return std::to_string(n) + " threads; this process may run on " + std::to_string(cpus) + " CPU" +
         (cpus == 1 ? "" : "s") + ", so use 0 (the default) or 1.." + std::to_string(cpus);
}

int checked_threads(int64_t n, const std::string& what) {
  const std::string problem = threads_problem(n);
  if (!problem.empty()) throw InputError(what + ": " + problem);
  return int(n);
}

int threads_per_worker(int64_t requested, int workers, const std::string& what) {
  if (checked_threads(requested, what) > 0) return int(requested);
  return std::max(1, available_cpus() / std::max(1, workers));
}

void use_threads(int64_t n, const std::string& what) {
  if (checked_threads(n, what) > 0) at::set_num_threads(int(n));
}

}  // namespace flashnas

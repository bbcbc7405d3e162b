// CPU thread counts a user asks for (--threads, [train] threads): checked
// against the CPUs this process may run on before anything uses them.
#pragma once
#include <cstdint>
#include <string>

namespace flashnas {

// The CPUs this process may run on (its affinity mask; the online CPUs
// where that cannot be read), at least 1.
int available_cpus();

// What is wrong with a requested thread count ("" when nothing): it must be
// 0 (the default) or 1..available_cpus().
std::string threads_problem(int64_t n);

// Throws InputError "<what>: <threads_problem>" when there is one; returns n.
int checked_threads(int64_t n, const std::string& what);

// Training threads for each of `workers` processes on this machine:
// `requested` (checked_threads) when > 0, else the available CPUs shared
// among them, at least 1 each.
int threads_per_worker(int64_t requested, int workers, const std::string& what);

// checked_threads, then makes LibTorch's intra-op pool that size (n > 0).
void use_threads(int64_t n, const std::string& what);

}  // namespace flashnas

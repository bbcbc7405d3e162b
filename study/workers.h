// Extra worker processes for a study (`flashnas search --workers N`): this
// executable again, once per worker, with the same options plus
// `--worker-child <parent pid>`. Each runs run_search on the shared study
// database, and dies with its parent (a killed parent leaves no worker
// training on; its trials in flight are redone by the next run).
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace flashnas {

class WorkerProcesses {
 public:
  // Starts `n` processes of this executable with `args` (argv without the
  // program name) plus `--worker-child <this pid>`. Error when the executable
  // cannot be found or started.
  WorkerProcesses(const std::vector<std::string>& args, int n);
  // In a worker: be killed (SIGKILL) when `parent` exits, and exit now if it
  // already has.
  static void die_with_parent(pid_t parent);
  // Waits for every worker; returns how many failed (killed or non-zero exit).
  int wait();
  // Sends every worker `signal` (SIGINT or SIGTERM: each stops at its next
  // safe point) and waits for them.
  void stop(int signal);

 private:
  std::vector<pid_t> pids_;
};

}  // namespace flashnas

// Extra worker processes for a study (`flashnas search --workers N`): this
// executable again, once per worker, with the same options plus
// --worker-child. Each runs run_search on the shared study database.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace flashnas {

class WorkerProcesses {
 public:
  // Starts `n` processes of this executable with `args` (argv without the
  // program name). Error when the executable cannot be found or started.
  WorkerProcesses(const std::vector<std::string>& args, int n);
  // Waits for every worker; returns how many failed (killed or non-zero exit).
  int wait();

 private:
  std::vector<pid_t> pids_;
};

}  // namespace flashnas

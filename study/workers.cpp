#include "study/workers.h"

#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"

extern char** environ;

namespace flashnas {

WorkerProcesses::WorkerProcesses(const std::vector<std::string>& args, int n) {
  if (n <= 0) return;
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) throw Error("search: cannot find this executable to start workers");
  exe[len] = 0;
  std::vector<std::string> all = {exe};
  all.insert(all.end(), args.begin(), args.end());
  all.insert(all.end(), {"--worker-child", std::to_string(getpid())});
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (int i = 0; i < n; ++i) {
    pid_t pid = 0;
    if (posix_spawn(&pid, exe, nullptr, nullptr, argv.data(), environ) != 0) throw Error("search: cannot start a worker");
    pids_.push_back(pid);
  }
}

void WorkerProcesses::die_with_parent(pid_t parent) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) throw Error("search: cannot tie this worker to its parent process");
  if (getppid() != parent) _exit(1);  // the parent died before the line above
}

void WorkerProcesses::stop(int signal) {
  for (pid_t pid : pids_) kill(pid, signal);
  wait();
}

int WorkerProcesses::wait() {
  int failed = 0;
  for (pid_t pid : pids_) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  pids_.clear();
  return failed;
}

}  // namespace flashnas

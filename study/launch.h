// Cluster launch files for a study's workers (`flashnas launch`): a Slurm
// job-array script (one array task per worker) or a Kubernetes Indexed Job
// manifest (one index per worker). Each worker runs `flashnas worker` on
// the study's PostgreSQL database; trial weights go to the shared artifacts
// folder. Preemption reaches the worker as SIGTERM (Slurm: also --signal
// before the time limit; Kubernetes: the pod's termination), on which it ends
// its training step, gives its trial back and exits.
#pragma once
#include <string>
#include <vector>

namespace flashnas {

struct LaunchSpec {
  std::string db, study, artifacts;  // artifacts: absolute
  int workers = 1;
  int threads = 1;                   // training threads (and CPUs requested) per worker
  double lease_s = 60;
  std::string flashnas = "flashnas"; // the binary as the workers' machines start it
  std::string workdir;               // the folder workers start in (relative training data is read from it)
  // Slurm: extra sbatch options, one per entry ("--partition=gpu", "--time=04:00:00").
  std::vector<std::string> sbatch_args;
  std::string log_dir;               // Slurm: where each task's log goes (absolute)
  // Kubernetes.
  std::string image, k8s_namespace, artifacts_claim, pgpass_secret;
};

// InputError naming the flag for what a cluster cannot use: fewer than one
// worker, a SQLite --db (a file cannot be shared safely between machines),
// a relative path, an sbatch option not starting with "--", a name
// Kubernetes refuses, and for k8s a missing --image or --artifacts-claim.
void check_launch(const LaunchSpec& s, bool k8s);

std::string slurm_script(const LaunchSpec& s);
std::string k8s_manifest(const LaunchSpec& s);

// Submits a written launch file: `sbatch FILE` (Slurm) or `kubectl apply -f
// FILE` (Kubernetes); returns what the tool printed. InputError when the tool
// is not on PATH, Error with its output when it fails.
std::string submit_launch(bool k8s, const std::string& file);

// 'text' quoted for a POSIX shell.
std::string shell_quote(const std::string& text);

}  // namespace flashnas

#include "study/launch.h"

#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "common/db.h"
#include "common/error.h"
#include "common/json_io.h"

namespace flashnas {
namespace {

// A DNS-1123 label from the study name (Kubernetes object names).
std::string k8s_name(const std::string& study) {
  std::string out = "flashnas-";
  for (const char c : study) out += std::isalnum(static_cast<unsigned char>(c)) ? char(std::tolower(c)) : '-';
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.substr(0, 63);
}

std::string yaml_string(const std::string& s) { return json(s).dump(); }

std::vector<std::string> worker_args(const LaunchSpec& s) {
  char lease[32];
  std::snprintf(lease, sizeof lease, "%g", s.lease_s);
  return {s.flashnas, "worker", "--db", s.db, "--study", s.study, "--artifacts", s.artifacts,
          "--threads", std::to_string(s.threads), "--lease-s", lease};
}

}  // namespace

std::string submit_launch(bool k8s, const std::string& file) {
  const std::string tool = k8s ? "kubectl" : "sbatch";
  if (std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) != 0) {
    throw InputError("--submit: " + tool + " is not on PATH here; the launch file is written (" + file +
                     "): submit it where " + (k8s ? "your cluster's kubectl" : "Slurm's sbatch") + " runs");
  }
  const std::string cmd = (k8s ? "kubectl apply -f " : "sbatch ") + shell_quote(file) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw Error("--submit: cannot run " + tool);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) throw Error("--submit: " + tool + " failed: " + out);
  return out;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void check_launch(const LaunchSpec& s, bool k8s) {
  if (s.workers < 1) throw InputError("--workers: must be >= 1");
  if (!is_database_url(s.db)) {
    throw InputError("--db: workers on a cluster need a PostgreSQL URL (postgresql://user@host:port/dbname); a SQLite "
                     "file cannot be shared safely between machines. Move the study with: flashnas study copy " + s.db +
                     " postgresql://...");
  }
  if (s.artifacts.empty() || s.artifacts.front() != '/') {
    throw InputError("--artifacts: give the shared folder as an absolute path, as every worker sees it");
  }
  for (const auto& a : s.sbatch_args) {
    if (a.rfind("--", 0) != 0 || a.find('\n') != std::string::npos) {
      throw InputError("--sbatch-arg: \"" + a + "\" is not one sbatch option (write it as --name=value)");
    }
  }
  if (k8s) {
    if (s.image.empty()) throw InputError("--image: the container image with flashnas that the workers run");
    if (s.artifacts_claim.empty()) {
      throw InputError("--artifacts-claim: the PersistentVolumeClaim (ReadWriteMany) mounted at --artifacts in every worker");
    }
  }
}

std::string slurm_script(const LaunchSpec& s) {
  std::string out = "#!/bin/bash\n";
  out += "# flashnas workers for study \"" + s.study + "\": one array task per worker, each `flashnas worker`.\n";
  out += "# Submit with: sbatch THIS_FILE. Preemption or the time limit sends SIGTERM: the worker ends its\n";
  out += "# training step, gives its trial back and exits; requeued tasks continue the study.\n";
  out += "#SBATCH --job-name=" + k8s_name(s.study) + "\n";
  out += "#SBATCH --array=0-" + std::to_string(s.workers - 1) + "\n";
  out += "#SBATCH --ntasks=1\n";
  out += "#SBATCH --cpus-per-task=" + std::to_string(s.threads) + "\n";
  out += "#SBATCH --chdir=" + s.workdir + "\n";
  out += "#SBATCH --output=" + s.log_dir + "/" + k8s_name(s.study) + "-%A_%a.log\n";
  out += "#SBATCH --signal=B:TERM@120\n";
  out += "#SBATCH --requeue\n";
  for (const auto& a : s.sbatch_args) out += "#SBATCH " + a + "\n";
  std::string cmd;
  for (const auto& a : worker_args(s)) cmd += (cmd.empty() ? "" : " ") + shell_quote(a);
  out += "exec " + cmd + "\n";
  return out;
}

std::string k8s_manifest(const LaunchSpec& s) {
  const std::string name = k8s_name(s.study);
  std::string out;
  out += "# flashnas workers for study \"" + s.study + "\": a Kubernetes Indexed Job, one index per worker.\n";
  out += "# Apply with: kubectl apply -f THIS_FILE. Evicted or preempted pods (DisruptionTarget) do not\n";
  out += "# count as failures; the worker gives its trial back on SIGTERM.\n";
  out += "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: " + name + "\n";
  if (!s.k8s_namespace.empty()) out += "  namespace: " + s.k8s_namespace + "\n";
  out += "  labels:\n    app.kubernetes.io/name: flashnas\n    flashnas/study: " + yaml_string(s.study) + "\n";
  out += "spec:\n  completionMode: Indexed\n";
  out += "  completions: " + std::to_string(s.workers) + "\n  parallelism: " + std::to_string(s.workers) + "\n";
  out += "  backoffLimit: " + std::to_string(3 * s.workers) + "\n";
  out += "  podFailurePolicy:\n    rules:\n    - action: Ignore\n      onPodConditions:\n      - type: DisruptionTarget\n";
  out += "  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: flashnas\n";
  out += "    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: 120\n";
  out += "      containers:\n      - name: worker\n        image: " + yaml_string(s.image) + "\n";
  out += "        command:\n";
  for (const auto& a : worker_args(s)) out += "        - " + yaml_string(a) + "\n";
  if (!s.workdir.empty()) out += "        workingDir: " + yaml_string(s.workdir) + "\n";
  out += "        resources:\n          requests:\n            cpu: \"" + std::to_string(s.threads) + "\"\n";
  if (!s.pgpass_secret.empty()) {
    out += "        env:\n        - name: PGPASSFILE\n          value: /etc/flashnas/pgpass/pgpass\n";
  }
  out += "        volumeMounts:\n        - name: artifacts\n          mountPath: " + yaml_string(s.artifacts) + "\n";
  if (!s.pgpass_secret.empty()) out += "        - name: pgpass\n          mountPath: /etc/flashnas/pgpass\n          readOnly: true\n";
  out += "      volumes:\n      - name: artifacts\n        persistentVolumeClaim:\n          claimName: " + yaml_string(s.artifacts_claim) + "\n";
  if (!s.pgpass_secret.empty()) {
    out += "      - name: pgpass\n        secret:\n          secretName: " + yaml_string(s.pgpass_secret) +
           "\n          defaultMode: 0600\n          items:\n          - key: pgpass\n            path: pgpass\n";
  }
  return out;
}

}  // namespace flashnas

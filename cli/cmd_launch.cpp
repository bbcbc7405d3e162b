// `flashnas launch slurm|k8s`: writes (and with --submit, submits) the files
// that start a study's workers on a cluster (study/launch.h).
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "common/error.h"
#include "common/files.h"
#include "study/launch.h"
#include "search/runner.h"

namespace flashnas::cli {
namespace fs = std::filesystem;

void add_launch_command(CLI::App& app) {
  struct Opts {
    LaunchSpec spec;
    std::string out;
    bool submit = false;
  };
  auto* cmd = app.add_subcommand("launch", "Write the cluster job that runs a study's workers (Slurm job array, Kubernetes Indexed Job)");
  cmd->require_subcommand(1);
  for (const bool k8s : {false, true}) {
    auto o = std::make_shared<Opts>();
    auto* sub = cmd->add_subcommand(k8s ? "k8s" : "slurm", k8s ? "A Kubernetes Indexed Job manifest" : "A Slurm job-array script");
    sub->add_option("--db", o->spec.db, "The study's PostgreSQL URL (as the workers reach it)")->required();
    sub->add_option("--study", o->spec.study, "The study (flashnas study create makes one)")->required();
    sub->add_option("--workers", o->spec.workers, "Workers (array tasks, or Job indexes)")->required();
    sub->add_option("--artifacts", o->spec.artifacts, "Shared folder for the trials' runs, as every worker sees it")->required();
    sub->add_option("--threads", o->spec.threads, "Training threads (and CPUs requested) per worker")->capture_default_str();
    sub->add_option("--lease-s", o->spec.lease_s, "Lease length in seconds (flashnas worker --lease-s)")->capture_default_str();
    sub->add_option("--out", o->out, "The file to write (default: flashnas-STUDY.sbatch or flashnas-STUDY-job.yaml)");
    sub->add_flag("--submit", o->submit, k8s ? "Also run kubectl apply -f on it" : "Also run sbatch on it");
    if (k8s) {
      o->spec.flashnas = "flashnas";
      sub->add_option("--image", o->spec.image, "Container image with flashnas on its PATH")->required();
      sub->add_option("--artifacts-claim", o->spec.artifacts_claim, "PersistentVolumeClaim (ReadWriteMany) mounted at --artifacts")
          ->required();
      sub->add_option("--namespace", o->spec.k8s_namespace, "Kubernetes namespace");
      sub->add_option("--pgpass-secret", o->spec.pgpass_secret, "Secret whose key \"pgpass\" is the workers' .pgpass file");
      sub->add_option("--workdir", o->spec.workdir, "Working folder in the container (relative training data is read from it)");
    } else {
      sub->add_option("--sbatch-arg,--sbatch-args", o->spec.sbatch_args, "An extra sbatch option, e.g. --sbatch-arg=--partition=cpu (repeatable)");
      sub->add_option("--flashnas-bin", o->spec.flashnas, "flashnas as the nodes run it (default: this binary)");
    }
    sub->callback([o, k8s] {
      LaunchSpec& s = o->spec;
      if (!k8s) {
        if (s.flashnas == "flashnas") s.flashnas = fs::read_symlink("/proc/self/exe").string();
        s.workdir = fs::current_path().string();
      }
      if (o->out.empty()) o->out = "flashnas-" + s.study + (k8s ? "-job.yaml" : ".sbatch");
      s.log_dir = fs::absolute(fs::path(o->out)).parent_path().string();
      check_launch(s, k8s);
      check_output_file(o->out, "--out");
      // The study must be there, with its data and table, before any worker starts.
      worker_setup(s.db, s.study, s.artifacts, /*check_data=*/!k8s);  // a container has its own folders
      write_file_atomic(o->out, k8s ? k8s_manifest(s) : slurm_script(s));
      std::printf("wrote %s: %d workers for study \"%s\"\n", o->out.c_str(), s.workers, s.study.c_str());
      if (o->submit) std::printf("%s", submit_launch(k8s, o->out).c_str());
    });
  }
}

}  // namespace flashnas::cli

#include "pg_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

namespace flashnas::test {
namespace {

std::string reason;
std::unique_ptr<PgServer> server;

std::string find_bin() {
  if (const char* b = std::getenv("FLASHNAS_PG_BIN")) return b;
  std::error_code ec;
  std::string best;
  if (std::filesystem::is_directory("/usr/lib/postgresql", ec)) {
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      if (std::filesystem::exists(e.path() / "bin" / "initdb", ec)) best = (e.path() / "bin").string();
    }
  }
  return best;
}

// Runs a shell command; its exit status, its output in `out`.
int run(const std::string& cmd, std::string& out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[512];
  out.clear();
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string tool(const std::string& bin, const std::string& name) { return bin.empty() ? name : bin + "/" + name; }

}  // namespace

const std::string& PgServer::why() { return reason; }

PgServer* PgServer::get() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto s = std::unique_ptr<PgServer>(new PgServer());
    s->bin_ = find_bin();
    std::string out;
    if (run("command -v " + tool(s->bin_, "initdb"), out) != 0) {
      reason = "initdb not found (install Debian's postgresql, or set FLASHNAS_PG_BIN)";
      return;
    }
    char tmpl[] = "/tmp/flashnas-pg-XXXXXX";
    if (!mkdtemp(tmpl)) {
      reason = "cannot make a temporary folder";
      return;
    }
    s->dir_ = tmpl;
    if (geteuid() == 0) {
      if (run("id -u postgres", out) != 0) {
        reason = "running as root and there is no postgres user to run the server as";
        return;
      }
      run("chown postgres " + s->dir_, out);
      s->as_ = "runuser -u postgres -- ";
    }
    const std::string data = s->dir_ + "/data";
    if (run(s->as_ + tool(s->bin_, "initdb") + " -D " + data + " -U postgres --auth=trust -E UTF8 --no-sync", out) != 0) {
      reason = "initdb failed: " + out.substr(0, 400);
      return;
    }
    // One role must authenticate with its password (the wrong-credentials
    // tests); every other one is trusted.
    {
      std::ofstream hba(data + "/pg_hba.conf");
      hba << "local all " << kPasswordUser << " scram-sha-256\nlocal all all trust\n";
    }
    // A unix socket in the folder and no TCP listener; fsync off (throwaway data).
    if (run(s->as_ + tool(s->bin_, "pg_ctl") + " -D " + data + " -l " + s->dir_ + "/log -w -t 60 -o \"-k " + s->dir_ +
                " -c listen_addresses='' -c fsync=off\" start",
            out) != 0) {
      std::ifstream log(s->dir_ + "/log");
      std::stringstream ss;
      ss << log.rdbuf();
      reason = "the server did not start: " + out.substr(0, 300) + " " + ss.str().substr(0, 400);
      return;
    }
    if (run(tool(s->bin_, "psql") + " -X -q -d '" + s->url("postgres") + "' -c \"CREATE ROLE " + kPasswordUser +
                " LOGIN CREATEDB PASSWORD 'right'\"",
            out) != 0) {
      reason = "cannot create the password role: " + out.substr(0, 300);
      return;
    }
    server = std::move(s);
  });
  return server.get();
}

PgServer::~PgServer() {
  std::string out;
  run(as_ + tool(bin_, "pg_ctl") + " -D " + dir_ + "/data -m immediate -w stop", out);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool PgServer::restart(std::string& why) {
  const int rc = run(as_ + tool(bin_, "pg_ctl") + " -D " + dir_ + "/data -l " + dir_ + "/log -m fast -w -t 60 -o \"-k " +
                         dir_ + " -c listen_addresses='' -c fsync=off\" restart",
                     why);
  return rc == 0;
}

std::string PgServer::url(const std::string& name) const {
  return "postgresql://postgres@/" + name + "?host=" + dir_;
}

std::string PgServer::new_database() {
  const std::string name = "t" + std::to_string(getpid()) + "_" + std::to_string(next_++);
  std::string out;
  if (run(tool(bin_, "psql") + " -X -q -d '" + url("postgres") + "' -c 'CREATE DATABASE " + name + "'", out) != 0) {
    ADD_FAILURE() << "CREATE DATABASE " << name << ": " << out;
  }
  return url(name);
}

}  // namespace flashnas::test

#include "common/stop.h"

#include <csignal>

namespace flashnas {
namespace {

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_second_ends = 1;
struct sigaction g_old_int, g_old_term;

void on_signal(int sig) {
  if (g_stop != 0 && g_second_ends) {  // the second one: end now, the default way
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  if (g_stop == 0) g_stop = sig;
}

}  // namespace

int stop_requested() { return int(g_stop); }

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  return "signal " + std::to_string(signal);
}

void throw_if_stopped(const std::string& what) {
  if (const int sig = stop_requested()) throw Stopped(sig, what + " (stopped by " + signal_name(sig) + ")");
}

StopSignals::StopSignals(bool second_ends) {
  g_stop = 0;
  g_second_ends = second_ends ? 1 : 0;
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

}  // namespace flashnas

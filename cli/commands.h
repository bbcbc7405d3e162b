// Each subcommand file adds its subcommand to the app; main.cpp calls these.
#pragma once
#include <CLI/CLI.hpp>

namespace flashnas::cli {

void add_arch_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_profile_command(CLI::App& app);
void add_latency_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_search_command(CLI::App& app);
void add_frontier_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_proxy_command(CLI::App& app);
void add_bench_table_command(CLI::App& app);
void add_bench_search_command(CLI::App& app);
void add_worker_command(CLI::App& app);
void add_study_command(CLI::App& app);
void add_launch_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_report_command(CLI::App& app);

}  // namespace flashnas::cli

// The subcommands of `tandem`. Each add_*_command registers its flags on the app and the
// callback that runs it; main.cpp lists them.
#pragma once

#include <CLI/CLI.hpp>

namespace tandem::cli {

void add_tokenizer_command(CLI::App& app);
void add_prepare_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_sft_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_verify_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_serve_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_grpo_command(CLI::App& app);
void add_task_command(CLI::App& app);

}  // namespace tandem::cli

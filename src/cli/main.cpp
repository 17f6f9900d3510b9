// `tandem`: parses the command line, runs one subcommand, and turns failures into exit codes:
// 0 success, 1 a user error (one line on stderr), 2 a usage error; `train` adds 3 for a hung step
// (cli/supervisor.h).
#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
    CLI::App app{"tandem: train decoder-only transformers on any hardware, serve them on any other"};
    app.set_version_flag("--version", std::string("tandem ") + TANDEM_VERSION);
    app.require_subcommand(1);
    app.add_flag_callback("-v,--verbose", [] { tandem::set_log_details(true); },
                          "details on stderr (the cpu backend's kernel choice, ...)");
    app.fallthrough();  // -v after the subcommand too (set before they are added: they inherit it)
    tandem::cli::add_tokenizer_command(app);
    tandem::cli::add_prepare_command(app);
    tandem::cli::add_train_command(app);
    tandem::cli::add_sft_command(app);
    tandem::cli::add_generate_command(app);
    tandem::cli::add_info_command(app);
    tandem::cli::add_export_command(app);
    tandem::cli::add_verify_command(app);
    tandem::cli::add_bench_command(app);
    tandem::cli::add_perplexity_command(app);
    tandem::cli::add_serve_command(app);
    tandem::cli::add_chat_command(app);
    tandem::cli::add_eval_command(app);
    tandem::cli::add_grpo_command(app);
    tandem::cli::add_task_command(app);
    tandem::cli::add_demo_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;
    } catch (const tandem::Error& e) {
        std::fprintf(stderr, "tandem: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tandem: error: %s\n", e.what());
        return 1;
    }
    return 0;
}

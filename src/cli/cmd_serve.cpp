// `tandem serve`: the OpenAI-compatible HTTP server over one model. The socket is bound and
// announced before the model loads (/health says "loading" meanwhile); SIGTERM or SIGINT stops
// accepting, lets running requests finish for up to --shutdown-timeout, and exits 0. Signals are
// taken by one thread with sigwait, so no handler runs inside the server's threads.
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/log.h"
#include "serve/served_model.h"
#include "serve/server.h"

namespace tandem::cli {

namespace {

struct ServeArgs {
    serve::ServedModelOptions model;
    serve::ServerOptions server;
    EngineArgs engine;
    double shutdown_timeout_s = 30;
};

// Blocks SIGTERM and SIGINT in this thread and every thread started after it.
sigset_t block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

void run_serve(ServeArgs a) {
    if (a.server.api_key.empty())
        if (const char* key = std::getenv("TANDEM_API_KEY")) a.server.api_key = key;
    const EngineArgs& e = a.engine;
    a.model.max_seqs = e.max_seqs;
    a.model.max_tokens_per_step = e.max_tokens_per_step;
    a.model.prefill_chunk = e.prefill_chunk;
    a.model.kv_pages = e.kv_pages;
    a.model.kv_memory_mb = e.kv_memory_mb;
    a.model.kv_page_size = e.kv_page_size;
    a.model.kv_dtype = dtype_from_name(e.kv_dtype);
    a.model.prefix_cache = e.prefix_cache_on();
    a.server.max_running = e.max_seqs;

    const sigset_t stop_signals = block_stop_signals();
    serve::Server server(a.server);
    const int port = server.start();
    // Exactly this line: tests and scripts read the port from it. IPv6 hosts go in brackets.
    const std::string host = a.server.host.find(':') == std::string::npos
                                 ? a.server.host
                                 : "[" + a.server.host + "]";
    std::fprintf(stderr, "tandem serve: listening on http://%s:%d\n", host.c_str(), port);
    std::fflush(stderr);

    // A signal while the model loads ends the process at once: nothing is running yet.
    std::atomic<bool> attached{false};
    std::thread waiter([&] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        if (!attached) {
            std::fprintf(stderr, "tandem serve: stopped by signal %d while loading\n", sig);
            std::_Exit(0);
        }
    });
    const std::unique_ptr<serve::ServedModel> model = serve::ServedModel::load(a.model);
    server.attach(*model);
    attached = true;
    std::fprintf(stderr, "tandem serve: ready: %s\n", model->describe().c_str());
    std::fflush(stderr);

    waiter.join();  // returns on the first SIGTERM or SIGINT
    std::fprintf(stderr, "tandem serve: stopping: finishing running requests (up to %.0f s)\n",
                 a.shutdown_timeout_s);
    server.shutdown(std::chrono::milliseconds(int64_t(a.shutdown_timeout_s * 1000)));
    std::fprintf(stderr, "tandem serve: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
    auto a = std::make_shared<ServeArgs>();
    serve::ServedModelOptions& m = a->model;
    serve::ServerOptions& s = a->server;
    CLI::App* cmd = app.add_subcommand(
        "serve", "Serve a model over an OpenAI-compatible HTTP API, with a chat page at /");
    cmd->add_option("--model", m.path, "a tandem run or checkpoint directory, a Hugging Face model directory, or a .gguf file")
        ->required();
    cmd->add_option("--host", s.host, "address to listen on (loopback by default; 0.0.0.0 for every interface)")
        ->capture_default_str();
    between(cmd->add_option("--port", s.port, "port to listen on (0 picks a free one)"), 0, 65535)
        ->capture_default_str();
    cmd->add_option("--api-key", s.api_key, "require 'Authorization: Bearer KEY' on every route but /health (default: $TANDEM_API_KEY)");
    cmd->add_option("--served-model-name", m.name, "the model's name in the API (default: the last part of --model)");
    at_least(cmd->add_option("--ctx", m.n_ctx, "context length served, prompt and reply (default: the model's, at most 4096)"), 1);
    cmd->add_option("--chat-template", m.chat_template_path, "a Jinja chat template file (ChatML or Llama 3) instead of the model's");
    add_quant_option(cmd, m.quant);
    cmd->add_option("--device", m.device, "cpu, cuda, reference or auto")->capture_default_str();
    add_engine_options(cmd, a->engine);
    at_least(cmd->add_option("--max-queue", s.max_waiting, "sequences waiting beyond --max-seqs; more get 429"), 0)
        ->capture_default_str();
    between(cmd->add_option("--max-body", s.max_body_bytes, "request bodies larger than this many bytes get 413"),
            1, double(serve::kMaxBodyBytes))
        ->capture_default_str();
    between(cmd->add_option("--max-choices", s.max_choices, "n times the prompts of one request at most"), 1, 1024)
        ->capture_default_str();
    positive(cmd->add_option("--read-timeout", s.read_timeout_s, "seconds a socket read may wait (slow clients are cut)"))
        ->capture_default_str();
    positive(cmd->add_option("--write-timeout", s.write_timeout_s, "seconds a socket write may wait"))
        ->capture_default_str();
    at_least(cmd->add_option("--shutdown-timeout", a->shutdown_timeout_s,
                             "seconds running requests may take to finish after SIGTERM"),
             0)
        ->capture_default_str();
    at_least(cmd->add_option("--http-threads", s.n_threads, "connections served at once (default: --max-seqs + --max-queue + 8)"), 0);
    cmd->callback([a] { run_serve(*a); });
}

}  // namespace tandem::cli

// `tandem demo`: the whole path on a corpus every Debian machine can install (fortunes):
// train a byte-level BPE tokenizer, prepare token shards, train a small Llama-family model on
// the CPU for a few minutes, then print samples and the validation loss beside the unigram
// baseline. Running it again continues the same run (or, when finished, only samples).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress_bar.h"
#include "cli/train_progress.h"
#include "core/error.h"
#include "core/log.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "infer/paged_forward.h"
#include "infer/model_source.h"
#include "io/bpe_trainer.h"
#include "io/prepare.h"
#include "io/token_stats.h"
#include "io/tokenizer_files.h"
#include "train/trainer.h"

namespace tandem::cli {

namespace fs = std::filesystem;

namespace {

// The embedded default: 2.4M parameters and 1500 steps of 2048 tokens, about 3 passes over the
// corpus: 3 to 5 minutes at the 11k-22k tokens/s measured on 2 cores (docs/PERFORMANCE.md).
constexpr const char* kDemoConfig = R"({
  "model": {"preset": "tiny", "n_layers": 4, "d_model": 192, "n_heads": 6, "n_heads_kv": 2,
            "head_dim": 32, "d_ffn": 512, "max_seq_len": 256},
  "batch_size": 16, "seq_len": 128, "steps": 1500,
  "lr": 3e-3, "lr_min": 3e-4, "warmup_steps": 30, "weight_decay": 0.1, "grad_clip": 1.0,
  "eval_every": 100, "eval_batches": 8, "checkpoint_every": 200, "log_every": 25, "seed": 1337
})";

struct DemoArgs {
    std::string out = "runs/demo";
    std::string corpus = "/usr/share/games/fortunes";
    int64_t vocab_size = 2048;
    int64_t steps = 0;  // 0: the embedded default
    int64_t samples = 4;
    std::string device = "cpu";
};

std::vector<std::string> corpus_files(const std::string& dir) {
    std::vector<std::string> files;
    std::error_code ec;
    if (fs::is_directory(dir, ec))
        for (const auto& entry : fs::directory_iterator(dir)) {
            const std::string ext = entry.path().extension().string();
            if (entry.is_regular_file() && ext != ".dat" && ext != ".u8") files.push_back(entry.path().string());
        }
    std::sort(files.begin(), files.end());
    if (files.empty())
        throw Error(dir, ": no corpus files (the demo uses Debian's fortunes package: run scripts/setup, "
                    "or point --corpus at a directory of text files separated by % lines)");
    return files;
}

void step_title(int n, const char* text) { log_info("\n[", n, "/4] ", text); }

void run_demo(const DemoArgs& a) {
    set_log_details(true);  // the kernel choice belongs in the training log, before any sample
    const std::vector<std::string> files = corpus_files(a.corpus);
    fs::create_directories(a.out);
    const std::string tokenizer_path = (fs::path(a.out) / "tokenizer.json").string();
    const std::string data_dir = (fs::path(a.out) / "data").string();
    const std::string run_dir = (fs::path(a.out) / "run").string();

    step_title(1, "byte-level BPE tokenizer");
    if (!fs::exists(tokenizer_path)) {
        io::BpeTrainerOptions options;
        options.vocab_size = a.vocab_size;
        options.specials = {"<|endoftext|>"};
        io::save_hf_tokenizer_json(io::train_bpe(files, options), tokenizer_path);
        log_info("trained a ", a.vocab_size, "-token vocabulary on ", files.size(), " files of ", a.corpus,
                 " -> ", tokenizer_path);
    } else {
        log_info("using ", tokenizer_path);
    }
    const io::BpeTokenizer tokenizer = io::load_tokenizer(tokenizer_path);

    step_title(2, "token shards");
    if (!fs::exists(fs::path(data_dir) / "meta.json")) {
        io::PrepareOptions options;
        options.inputs = files;
        options.format.separator = "%";  // fortune files separate fortunes by a line "%"
        options.out_dir = data_dir;
        options.val_fraction = 0.02;
        options.tokenizer_source = tokenizer_path;
        ProgressBar bar("prepare");
        options.on_progress = [&](const io::PrepareProgress& p) { bar.update(p.bytes_done, p.bytes_total); };
        const io::PrepareSummary s = io::prepare_shards(tokenizer, options);
        bar.finish();
        log_info(s.n_documents[0], " train and ", s.n_documents[1], " validation fortunes, ", s.n_tokens[0],
                 " + ", s.n_tokens[1], " tokens -> ", data_dir);
    } else {
        log_info("using ", data_dir);
    }

    step_title(3, "training a small Llama-family model");
    train::TrainOptions options;
    nlohmann::json config = nlohmann::json::parse(kDemoConfig);
    if (a.steps > 0) config["steps"] = a.steps;
    config["device"] = a.device;
    options.config = train::TrainConfig::from_json(config, "the demo configuration");
    options.data_dir = data_dir;
    options.run_dir = run_dir;
    options.resume = train::ResumeMode::Auto;
    const train::TrainEvents events = train_progress_events(options.config.log_every);
    const train::TrainResult result = train::run_training(options, events);
    end_train_progress();

    step_title(4, "samples");
    backend::Backend& be = backend::get_backend(a.device);
    infer::LoadedModel loaded = infer::load_model(run_dir, be);
    const int64_t context = loaded.weights->config().max_seq_len;
    // One sequence at a time, the whole context in the cache.
    infer::PagedForward model(*loaded.weights, {.max_tokens_per_step = context,
                                                .pages = {.n_pages = (context + 15) / 16, .page_size = 16}});
    infer::Engine engine(model, *loaded.tokenizer);
    for (int64_t i = 0; i < a.samples; ++i) {
        infer::GenerateOptions g;
        g.max_tokens = 100;
        g.sampling.temperature = 0.8f;
        g.sampling.top_k = 40;
        g.sampling.top_p = 0.95f;
        g.sampling.seed = static_cast<uint64_t>(i + 1);
        const infer::GenerateResult sample = infer::generate(engine, *loaded.tokenizer, g);
        std::printf("--- sample %lld (seed %lld) ---\n%s\n", (long long)i + 1, (long long)i + 1, sample.text.c_str());
    }
    std::printf("---\n");

    const double unigram = io::unigram_entropy(data_dir, "val");
    if (result.val_loss)
        std::printf("validation loss %.3f nats/token; a model that ignores context (unigram) gets %.3f\n",
                    *result.val_loss, unigram);
    std::printf("\nThe run is in %s. Continue from there:\n", run_dir.c_str());
    std::printf("  tandem generate --model %s --prompt \"A fortune for you:\" --temperature 0.8\n", run_dir.c_str());
    std::printf("  tandem info %s\n", run_dir.c_str());
    std::printf("  tandem train --out %s --resume steps=%lld    # train further\n", run_dir.c_str(),
                (long long)(2 * options.config.steps));
}

}  // namespace

void add_demo_command(CLI::App& app) {
    auto a = std::make_shared<DemoArgs>();
    CLI::App* cmd = app.add_subcommand(
        "demo", "Tokenizer, shards, a few minutes of training and samples, on Debian's fortunes");
    cmd->add_option("--out", a->out, "working directory")->capture_default_str();
    cmd->add_option("--corpus", a->corpus, "directory of text files with % separators")->capture_default_str();
    between(cmd->add_option("--vocab-size", a->vocab_size, "tokenizer vocabulary"), 260, 65536)
        ->capture_default_str();
    positive(cmd->add_option("--steps", a->steps, "training steps (default: the embedded configuration's)"));
    at_least(cmd->add_option("--samples", a->samples, "samples to print"), 0)->capture_default_str();
    cmd->add_option("--device", a->device, "cpu, cuda or auto")->capture_default_str();
    cmd->callback([a] { run_demo(*a); });
}

}  // namespace tandem::cli

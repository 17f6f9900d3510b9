// `tandem prepare`: tokenizes a corpus into train/val token shards for training.
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "core/log.h"
#include "io/prepare.h"
#include "io/tokenizer_files.h"

namespace tandem::cli {

namespace {

struct PrepareArgs {
    std::string tokenizer;
    std::string format = "text";
    int threads = 0;
    io::PrepareOptions options;
};

void run_prepare(PrepareArgs& a) {
    io::BpeTokenizer tokenizer = io::load_tokenizer(a.tokenizer);
    a.options.n_threads = a.threads;
    a.options.format.format = a.format == "jsonl" ? io::InputFormat::Jsonl : io::InputFormat::Text;
    a.options.tokenizer_source = a.tokenizer;
    ProgressBar bar("prepare");
    a.options.on_progress = [&](const io::PrepareProgress& p) {
        bar.update(p.bytes_done, p.bytes_total);
    };
    io::PrepareSummary s = io::prepare_shards(tokenizer, a.options);
    bar.finish();
    log_info("prepare: ", s.n_bytes, " bytes -> train ", s.n_documents[0], " documents, ",
             s.n_tokens[0], " tokens in ", s.n_shards[0], " shards; val ", s.n_documents[1],
             " documents, ", s.n_tokens[1], " tokens in ", s.n_shards[1], " shards; in ",
             a.options.out_dir);
}

}  // namespace

void add_prepare_command(CLI::App& app) {
    auto a = std::make_shared<PrepareArgs>();
    io::PrepareOptions& o = a->options;
    CLI::App* cmd = app.add_subcommand("prepare", "Tokenize a corpus into train/val token shards");
    cmd->add_option(
           "--tokenizer", a->tokenizer,
           "tokenizer.json, or a directory with tokenizer.json or encoder.json + vocab.bpe")
        ->required();
    cmd->add_option("--input", o.inputs, "files or directories (read recursively, sorted)")
        ->required();
    cmd->add_option("--format", a->format, "text or jsonl")
        ->check(CLI::IsMember({"text", "jsonl"}));
    cmd->add_option("--field", o.format.field, "jsonl: the string field holding the document");
    cmd->add_option("--doc-separator", o.format.separator,
                    "text: a line equal to this ends a document (e.g. % for fortune files); "
                    "default: each file is one document");
    cmd->add_option("--out", o.out_dir, "output directory (shards, meta.json, tokenizer.json)")
        ->required();
    cmd->add_option("--val-fraction", o.val_fraction, "fraction of documents for validation")
        ->check(CLI::Range(0.0, 0.999));
    cmd->add_option("--shard-tokens", o.shard_tokens, "tokens per shard")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--threads", a->threads, "tokenizing threads (default: all cores)")
        ->check(CLI::NonNegativeNumber);
    cmd->callback([a] { run_prepare(*a); });
}

}  // namespace tandem::cli

// `tandem prepare`: tokenizes a corpus into train/val token shards for training.
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress_bar.h"
#include "core/log.h"
#include "io/prepare.h"
#include "io/tokenizer_files.h"

namespace tandem::cli {

namespace {

struct PrepareArgs {
    std::string tokenizer;
    TextInputArgs text;
    int threads = 0;
    io::PrepareOptions options;
};

void run_prepare(PrepareArgs& a) {
    io::BpeTokenizer tokenizer = io::load_tokenizer(a.tokenizer);
    a.options.n_threads = a.threads;
    a.options.inputs = a.text.inputs;
    a.options.format = a.text.document_format();
    a.options.tokenizer_source = a.tokenizer;
    ProgressBar bar("prepare");
    a.options.on_progress = [&](const io::PrepareProgress& p) {
        bar.update(p.bytes_done, p.bytes_total);
    };
    io::PrepareSummary s = io::prepare_shards(tokenizer, a.options);
    bar.finish();
    if (s.n_tail_tokens > 0) {
        const int64_t n_docs = s.n_documents[0];
        log_info("prepare: ", n_docs, n_docs == 1 ? " document is" : " documents are",
                 " too few for --val-fraction ", a.options.val_fraction,
                 " (none was drawn for validation), so validation is the last ", s.n_tail_tokens,
                 " tokens of the stream (cut inside a document) and train the ", s.n_tokens[0],
                 " before them");
    }
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
    add_text_input_options(cmd, a->text, "the corpus", true);
    cmd->add_option("--out", o.out_dir, "output directory (shards, meta.json, tokenizer.json)")
        ->required();
    check_range(cmd->add_option("--val-fraction", o.val_fraction,
                                "fraction of documents for validation (of tokens, from the end "
                                "of the stream, when there are too few documents)"),
                {.lo = 0, .hi = 1, .hi_open = true})
        ->capture_default_str();
    positive(cmd->add_option("--shard-tokens", o.shard_tokens, "tokens per shard"));
    at_least(cmd->add_option("--threads", a->threads, "tokenizing threads (default: all cores)"),
             0);
    cmd->callback([a] { run_prepare(*a); });
}

}  // namespace tandem::cli

// `tandem tokenizer encode|decode|train`: ids of a text, the text of ids, and a new byte-level
// BPE vocabulary from a corpus.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress_bar.h"
#include "core/log.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/bpe_trainer.h"
#include "io/tokenizer_files.h"

namespace tandem::cli {

namespace {

// Every trained tokenizer gets it unless told otherwise: `prepare` puts it before each document.
constexpr const char* kDefaultSpecial = "<|endoftext|>";

struct TokenizerOptions {
    std::string tokenizer;
    TextInputArgs text;         // encode's and train's inputs
    std::string ids = "-";      // decode's input
    int64_t vocab_size = 0;
    std::vector<std::string> specials;
    bool no_default_special = false;
    std::string out;
};

std::string read_input(const std::string& path) {
    io::InputStream stream(path);
    std::string text{std::istreambuf_iterator<char>(stream.get()), std::istreambuf_iterator<char>()};
    if (stream.get().bad()) throw Error(path == io::kStdinInput ? "stdin" : path, ": read failed");
    return text;
}

// One line of ids per document (a plain text file, or stdin, is one document).
void run_encode(const TokenizerOptions& o) {
    io::BpeTokenizer tok = io::load_tokenizer(o.tokenizer);
    const std::vector<std::string> inputs =
        o.text.inputs.empty() ? std::vector<std::string>{io::kStdinInput} : o.text.inputs;
    io::DocumentReader reader(io::expand_inputs(inputs), o.text.document_format());
    std::string text, line;
    std::vector<int32_t> ids;
    io::EncodeCache cache;
    while (reader.next(text)) {
        ids.clear();
        tok.encode(text, ids, &cache);
        line.clear();
        for (size_t i = 0; i < ids.size(); ++i) {
            if (i) line += ' ';
            line += std::to_string(ids[i]);
        }
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), stdout);
    }
}

void run_decode(const TokenizerOptions& o) {
    io::BpeTokenizer tok = io::load_tokenizer(o.tokenizer);
    std::string text = read_input(o.ids);
    std::string where = o.ids == io::kStdinInput ? "stdin" : o.ids;
    std::vector<int32_t> ids;
    const char* p = text.data();
    const char* end = p + text.size();
    while (p < end) {
        if (std::isspace(uint8_t(*p))) {
            ++p;
            continue;
        }
        const char* start = p;
        int64_t v = 0;
        while (p < end && *p >= '0' && *p <= '9' && v < (int64_t(1) << 31))
            v = v * 10 + (*p++ - '0');
        if (p == start || (p < end && !std::isspace(uint8_t(*p))) || v >= (int64_t(1) << 31))
            throw Error(where, ": expected whitespace-separated token ids, found '",
                        std::string(start, std::min<size_t>(20, end - start)), "' at byte ",
                        start - text.data());
        ids.push_back(int32_t(v));
    }
    std::string bytes = tok.decode(ids);
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
}

void run_train(const TokenizerOptions& o) {
    io::BpeTrainerOptions options;
    options.vocab_size = o.vocab_size;
    options.specials = o.specials;
    if (!o.no_default_special &&
        std::find(o.specials.begin(), o.specials.end(), kDefaultSpecial) == o.specials.end())
        options.specials.insert(options.specials.begin(), kDefaultSpecial);
    options.format = o.text.document_format();
    ProgressBar bar("counting");
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    auto counted = start;  // when the last chunk was counted: the merging starts there
    options.on_read = [&](int64_t done, int64_t total) {
        bar.update(done, total);
        counted = Clock::now();
    };
    io::BpeModel model = io::train_bpe(o.text.inputs, options);
    bar.finish();
    io::save_hf_tokenizer_json(model, o.out);
    auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
    log_info("tokenizer: ", model.tokens.size() + model.added.size(), " tokens (",
             model.merges.size(), " merges, ", model.added.size(), " special) written to ", o.out,
             "; counting ", seconds(counted - start), " s, merging and writing ",
             seconds(Clock::now() - counted), " s");
}

}  // namespace

void add_tokenizer_command(CLI::App& app) {
    auto o = std::make_shared<TokenizerOptions>();
    CLI::App* cmd =
        app.add_subcommand("tokenizer", "Encode, decode or train a byte-level BPE tokenizer");
    cmd->require_subcommand(1);

    const char* tok_help =
        "tokenizer.json, or a directory with tokenizer.json or encoder.json + vocab.bpe";
    CLI::App* enc =
        cmd->add_subcommand("encode", "Print the token ids of a text (no special tokens added)");
    enc->add_option("--tokenizer", o->tokenizer, tok_help)->required();
    add_text_input_options(enc, o->text, "text to encode, one line of ids per document", false);
    enc->callback([o] { run_encode(*o); });

    CLI::App* dec =
        cmd->add_subcommand("decode", "Print the text of whitespace-separated token ids");
    dec->add_option("--tokenizer", o->tokenizer, tok_help)->required();
    dec->add_option("--input", o->ids, "file of ids, or - for stdin")->capture_default_str();
    dec->callback([o] { run_decode(*o); });

    CLI::App* train =
        cmd->add_subcommand("train", "Train a byte-level BPE vocabulary on text files");
    add_text_input_options(train, o->text, "training text", true);
    between(train->add_option("--vocab-size", o->vocab_size,
                              "tokens in all: 256 bytes + merges + specials"),
            257, double(int64_t(1) << 22))
        ->required();
    train->add_option("--special", o->specials,
                      "special tokens, added at the end of the vocabulary (<|endoftext|> is "
                      "always one, first, unless --no-default-special)");
    train->add_flag("--no-default-special", o->no_default_special,
                    "do not add <|endoftext|> (prepare then refuses the tokenizer)");
    train->add_option("--out", o->out, "tokenizer.json to write")->required();
    train->callback([o] { run_train(*o); });
}

}  // namespace tandem::cli

// run_sft: loads the model, reads and renders the data (reporting every bad line), splits off the
// held-out examples, and hands the trainer a RunData over the packed rows.
#include "train/sft.h"

#include <algorithm>
#include <filesystem>
#include <memory>

#include "core/checksum.h"
#include "core/error.h"
#include "dist/mpi_communicator.h"
#include "io/atomic_file.h"
#include "io/chat_data.h"
#include "io/checkpoint_dir.h"
#include "io/json_fields.h"
#include "io/tokenizer_config.h"
#include "io/tokenizer_files.h"
#include "model/config.h"
#include "train/sft_data.h"
#include "train/sft_render.h"

namespace tandem::train {

namespace fs = std::filesystem;

BadLinePolicy bad_line_policy_from_string(const std::string& text) {
    if (text == "error") return BadLinePolicy::Error;
    if (text == "skip") return BadLinePolicy::Skip;
    throw Error("--bad-lines ", text, " is not one of error, skip");
}

namespace {

// The file's examples rendered, with the lines that cannot be trained on added to `bad`.
std::vector<SftSequence> render_examples(const io::ChatFile& file, const SftRenderer& renderer,
                                         const SftOptions& options, int64_t max_seq_len,
                                         std::vector<io::BadLine>& bad) {
    const int64_t max_ids = options.config.seq_len + 1;
    std::vector<SftSequence> sequences;
    for (const io::ChatExample& example : file.examples) {
        const std::string where = options.data_path + ":" + std::to_string(example.line);
        try {
            SftSequence s = renderer.render(example, where);
            if (int64_t(s.tokens.size()) > max_ids)
                throw Error(where, ": ", s.tokens.size(),
                            " tokens once rendered, more than seq_len + 1 = ", max_ids,
                            " (raise seq_len, up to the model's max_seq_len ", max_seq_len,
                            ", or shorten the example)");
            sequences.push_back(std::move(s));
        } catch (const Error& e) {
            bad.push_back({example.line, e.what()});
        }
    }
    std::sort(bad.begin(), bad.end(),
              [](const io::BadLine& a, const io::BadLine& b) { return a.line < b.line; });
    return sequences;
}

// Bad lines stop the run (BadLinePolicy::Error) or are reported one by one and left out.
void handle_bad_lines(const std::vector<io::BadLine>& bad, const SftOptions& options,
                      const TrainEvents& events) {
    if (bad.empty()) return;
    if (options.bad_lines == BadLinePolicy::Error) {
        constexpr size_t kShown = 5;
        std::string list;
        for (size_t i = 0; i < std::min(bad.size(), kShown); ++i)
            list += (i ? "; " : "") + bad[i].reason;
        if (bad.size() > kShown) list += "; and " + std::to_string(bad.size() - kShown) + " more";
        throw Error(options.data_path, ": ", bad.size(), " bad line(s): ", list,
                    " (fix them, or pass --bad-lines skip to train without them)");
    }
    for (const io::BadLine& b : bad) {
        const std::string text = b.reason + " (line skipped)";
        if (events.on_warning) events.on_warning(text);
    }
}

// The held-out fraction: the one asked for, checked against the run's own record (sft.json) when
// it resumes, with the data's checksum: other data or another split would make the resumed run
// read other batches. sft.json records both for a fresh run.
double settle_val_fraction(const SftOptions& options, uint64_t data_checksum) {
    const std::string path = (fs::path(options.run_dir) / "sft.json").string();
    std::optional<double> recorded;
    if (options.resume != ResumeMode::Never && fs::exists(path)) {
        const nlohmann::json record = io::parse_json_text(io::read_file(path), path);
        recorded = record.value("val_fraction", 0.05);
        const std::string checksum = record.value("data_xxh3", "");
        if (!checksum.empty() && checksum != hex64(data_checksum))
            throw Error(options.data_path, ": changed since the run started (xxh3 ",
                        hex64(data_checksum), ", ", path, " recorded ", checksum,
                        "); resuming on other data would not continue the run: restore "
                        "the file, or fine-tune from the run's checkpoint into another --out");
    }
    const double value = options.val_fraction.value_or(recorded.value_or(0.05));
    if (!(value >= 0 && value < 1)) throw Error("--val-fraction ", value, " must lie in [0, 1)");
    if (recorded && *recorded != value)
        throw Error("--val-fraction ", value, " differs from the run's ", *recorded, " (", path,
                    "); a resumed run keeps its held-out split (drop --val-fraction)");
    // A fresh run into a directory with checkpoints is refused by the trainer: its record stays.
    const std::string checkpoints = (fs::path(options.run_dir) / "checkpoints").string();
    if (!recorded && io::list_checkpoints(checkpoints).empty() && dist::launched_rank() == 0) {
        fs::create_directories(options.run_dir);
        io::write_file_atomic(path, nlohmann::json{{"val_fraction", value},
                                                   {"data", options.data_path},
                                                   {"data_xxh3", hex64(data_checksum)},
                                                   {"model", options.config.init}}
                                            .dump(2) +
                                        "\n");
    }
    return value;
}

}  // namespace

SftResult run_sft(const SftOptions& options, const TrainEvents& events) {
    TrainConfig cfg = options.config;
    if (cfg.init.empty())
        throw Error("sft: no model to fine-tune (pass --model, or set init=PATH)");
    if (!options.load_init)
        throw Error("sft: init=", cfg.init, ": this program cannot load models");
    cfg.validate();
    // Under mpirun every rank reads and renders the data; rank 0 alone says what it found.
    const bool is_rank0 = dist::launched_rank() == 0;
    const auto say = [&](const std::string& text) {
        if (events.on_message && is_rank0) events.on_message(text);
    };

    auto init = std::make_shared<InitialWeights>(options.load_init(cfg.init));
    const model::ModelConfig model_config = init->weights->config();
    const SftRenderer renderer(init->tokenizer);
    const io::ChatFile file = io::read_chat_jsonl(options.data_path);
    const double val_fraction = settle_val_fraction(options, file.checksum);
    std::vector<io::BadLine> bad = file.bad_lines;
    std::vector<SftSequence> sequences =
        render_examples(file, renderer, options, model_config.max_seq_len, bad);
    handle_bad_lines(bad, options, events);

    SftResult result;
    result.n_lines = file.n_lines;
    result.n_skipped = int64_t(bad.size());
    result.n_examples = int64_t(sequences.size());
    result.rendering = renderer.describe();
    if (sequences.empty())
        throw Error(options.data_path, ": no example to train on (", file.n_lines, " line(s), ",
                    bad.size(), " bad)");
    auto split = std::make_shared<const SftSplit>(
        split_examples(std::move(sequences), val_fraction, cfg.seed));
    result.n_train = int64_t(split->train.size());
    result.n_val = int64_t(split->val.size());
    if (cfg.eval_every > 0 && cfg.eval_batches > 0 && split->val.empty())
        throw Error(options.data_path, ": no held-out example for the evaluation loss (",
                    result.n_examples, " example(s), --val-fraction ", val_fraction,
                    "); raise --val-fraction, add examples, or set eval_every=0 to train without "
                    "evaluation");
    for (const SftSequence& s : split->train) result.n_learned += s.n_learned();
    std::vector<uint32_t> first(split->train.size());
    for (size_t i = 0; i < first.size(); ++i) first[i] = uint32_t(i);
    const PackedRows rows = pack_sequences(split->train, first, cfg.seq_len, renderer.pad_id());
    say(Error::concat(
        options.data_path, ": ", result.n_examples, " example(s) of ", file.n_lines, " line(s)",
        bad.empty() ? std::string() : Error::concat(", ", bad.size(), " bad line(s) skipped"), "; ",
        result.n_train, " for training (", rows.n_rows, " rows of ", cfg.seq_len, ", ",
        int64_t(100.0 * double(rows.n_real) / double(rows.n_rows * cfg.seq_len)), "% filled, ",
        result.n_learned, " learned tokens an epoch), ", result.n_val, " held out; rendered as ",
        result.rendering));

    // The model's own config, so that a resumed run (which loads no init) builds the same model.
    cfg.model = model::config_to_json(model_config);
    TrainOptions train;
    train.config = cfg;
    train.data_dir = options.data_path;
    train.run_dir = options.run_dir;
    train.resume = options.resume;
    train.stop_after = options.stop_after;
    train.faults = options.faults;
    // A resumed run takes its weights from its checkpoint: those loaded here served only for the
    // tokenizer, and their memory goes before training (loaded again if no checkpoint is valid).
    const std::string checkpoints = (fs::path(options.run_dir) / "checkpoints").string();
    if (options.resume != ResumeMode::Never && !io::list_checkpoints(checkpoints).empty())
        init->weights.reset();
    train.load_init = [init, load = options.load_init](const std::string& path) {
        return init->weights ? std::move(*init) : load(path);
    };
    train.make_data = [split, seed = cfg.seed, pad = renderer.pad_id(),
                       tokenizer_json = io::to_hf_tokenizer_json(init->tokenizer),
                       tokenizer_config = io::to_tokenizer_config_json(init->tokenizer),
                       vocab = model_config.vocab_size](const RunDataShape& shape) {
        return std::make_unique<SftRunData>(split, shape, seed, pad, tokenizer_json,
                                            tokenizer_config, vocab);
    };
    result.train = run_training(train, events);
    return result;
}

}  // namespace tandem::train

// The prepare pipeline. Reading is sequential and overlaps the tokenizing: while a batch of
// documents is tokenized in parallel (one EncodeCache per thread), the next batch is read; each
// batch is then written in document order, so the shards are byte-identical for any number of
// threads. Every document is preceded by the end-of-text token
// (so a training window that starts mid-stream still sees where documents begin).
#include "io/prepare.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/checksum.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/parallel.h"
#include "io/token_shards.h"
#include "io/tokenizer_files.h"

namespace tandem::io {

namespace fs = std::filesystem;

namespace {

const char* kSplitNames[2] = {"train", "val"};

// One split's stream of tokens, cut into shards of about options.shard_tokens.
class SplitWriter {
   public:
    SplitWriter(std::string dir, int split, int64_t vocab_size, int64_t shard_tokens)
        : dir_(std::move(dir)),
          split_(split),
          vocab_size_(vocab_size),
          shard_tokens_(shard_tokens) {}

    void append(std::span<const int32_t> ids) {
        if (!writer_) {
            char name[64];
            std::snprintf(name, sizeof name, "%s_%06zu.bin", kSplitNames[split_], shards_.size());
            name_ = name;
            writer_ = std::make_unique<ShardWriter>(dir_ + "/" + name_, vocab_size_);
        }
        writer_->append(ids);
        if (int64_t(writer_->n_tokens()) >= shard_tokens_) close();
    }

    void close() {
        if (!writer_) return;
        ShardHeader h = writer_->commit();
        shards_.push_back({{"file", name_},
                           {"split", kSplitNames[split_]},
                           {"n_tokens", h.n_tokens},
                           {"xxh3", hex64(h.checksum)}});
        writer_.reset();
    }

    const std::vector<nlohmann::json>& shards() const { return shards_; }

    // Moves the last `n` tokens of this (closed) split to the end of `to`, in order: the shard
    // the cut falls in keeps its head (rewritten under the same name), the shards after it go.
    void move_tail(uint64_t n, SplitWriter& to) {
        uint64_t total = 0;
        for (const auto& sh : shards_) total += sh["n_tokens"].get<uint64_t>();
        const uint64_t cut = total - n;
        size_t first = 0;  // the shard holding token `cut`
        uint64_t first_start = 0;
        while (first_start + shards_[first]["n_tokens"].get<uint64_t>() <= cut)
            first_start += shards_[first++]["n_tokens"].get<uint64_t>();
        std::vector<MappedShard> mapped;
        for (size_t i = first; i < shards_.size(); ++i)
            mapped.emplace_back(dir_ + "/" + shards_[i]["file"].get<std::string>());
        std::vector<int32_t> buffer;
        auto copy = [&](const MappedShard& from, uint64_t begin, uint64_t end, auto&& sink) {
            for (uint64_t at = begin; at < end; at += kCopyTokens) {
                buffer.resize(size_t(std::min(kCopyTokens, end - at)));
                from.copy_tokens(at, buffer);
                sink(std::span<const int32_t>(buffer));
            }
        };
        for (size_t i = 0; i < mapped.size(); ++i)
            copy(mapped[i], i == 0 ? cut - first_start : 0, mapped[i].n_tokens(),
                 [&](std::span<const int32_t> ids) { to.append(ids); });
        const uint64_t head = cut - first_start;
        for (size_t i = first; i < shards_.size(); ++i)
            if (i > first || head == 0) fs::remove(mapped[i - first].path());
        if (head > 0) {  // a mapped file stays readable when a new one is renamed over it
            ShardWriter rewrite(mapped[0].path(), vocab_size_);
            copy(mapped[0], 0, head, [&](std::span<const int32_t> ids) { rewrite.append(ids); });
            const ShardHeader h = rewrite.commit();
            shards_[first]["n_tokens"] = h.n_tokens;
            shards_[first]["xxh3"] = hex64(h.checksum);
            ++first;
        }
        shards_.resize(first);
    }

   private:
    static constexpr uint64_t kCopyTokens = 1 << 20;

    std::string dir_;
    int split_;
    int64_t vocab_size_, shard_tokens_;
    std::unique_ptr<ShardWriter> writer_;
    std::string name_;
    std::vector<nlohmann::json> shards_;
};

// Makes room for the finished output: an earlier prepare output (it has meta.json) is replaced,
// anything else is left alone and reported.
void check_out_dir(const std::string& out_dir) {
    std::error_code ec;
    if (!fs::exists(out_dir, ec)) return;
    if (!fs::is_directory(out_dir, ec)) throw Error(out_dir, ": exists and is not a directory");
    if (fs::is_empty(out_dir, ec) || fs::exists(fs::path(out_dir) / "meta.json")) return;
    throw Error(out_dir,
                ": directory is not empty and is not an earlier tandem prepare output "
                "(no meta.json); choose another --out");
}

}  // namespace

int64_t tail_validation_tokens(int64_t n_tokens, double val_fraction) {
    if (val_fraction <= 0 || n_tokens < 2) return 0;
    const int64_t by_fraction = int64_t(std::ceil(double(n_tokens) * val_fraction));
    const int64_t floor = std::min<int64_t>((n_tokens + 9) / 10, kTailValidationTokens);
    return std::min(std::max(by_fraction, floor), n_tokens - 1);
}

bool is_validation_document(uint64_t index, double val_fraction) {
    uint64_t h = xxh3_64(&index, sizeof index);
    return double(h >> 11) * 0x1.0p-53 < val_fraction;
}

PrepareSummary prepare_shards(const BpeTokenizer& tokenizer, const PrepareOptions& o) {
    if (o.val_fraction < 0 || o.val_fraction >= 1)
        throw Error("--val-fraction ", o.val_fraction, " is outside [0, 1)");
    if (o.shard_tokens < 1) throw Error("--shard-tokens ", o.shard_tokens, " must be positive");
    check_out_dir(o.out_dir);
    std::vector<std::string> files = expand_inputs(o.inputs);
    if (files.empty())
        throw Error("no input files in: ", o.inputs.empty() ? "(none)" : o.inputs[0]);

    PrepareProgress progress;
    progress.bytes_total = total_input_bytes(files);
    const int32_t eot = tokenizer.eot_id();

    // Everything is written into a staging directory and moved into place at the end.
    const std::string staging = o.out_dir + ".partial";
    fs::remove_all(staging);
    fs::create_directories(staging);
    struct StagingGuard {
        std::string path;
        bool keep = false;
        ~StagingGuard() {
            std::error_code ec;
            if (!keep) fs::remove_all(path, ec);
        }
    } guard{staging};

    SplitWriter writers[2] = {{staging, 0, tokenizer.vocab_size(), o.shard_tokens},
                              {staging, 1, tokenizer.vocab_size(), o.shard_tokens}};
    PrepareSummary summary;
    DocumentReader reader(files, o.format);
    auto read_batch = [&](std::vector<std::string>& docs) {
        docs.clear();
        int64_t bytes = 0;
        std::string doc;
        while (bytes < o.batch_bytes && reader.next(doc)) {
            bytes += int64_t(doc.size());
            docs.push_back(std::move(doc));
        }
    };
    const int n_threads = thread_count(o.n_threads);
    std::vector<EncodeCache> caches(size_t(n_threads), EncodeCache{});
    std::vector<std::string> current, next;
    std::vector<std::vector<int32_t>> ids, done_ids;  // the batch being tokenized, the one before
    std::vector<int64_t> done_bytes;                   // document sizes of the batch before
    uint64_t doc_index = 0;
    // Appends the batch tokenized last to the shards, in document order.
    auto write_done = [&] {
        for (size_t i = 0; i < done_ids.size(); ++i, ++doc_index) {
            int split = is_validation_document(doc_index, o.val_fraction) ? 1 : 0;
            writers[split].append(done_ids[i]);
            summary.n_documents[split] += 1;
            summary.n_tokens[split] += int64_t(done_ids[i].size());
            progress.bytes_done += done_bytes[i];  // separators are not counted
        }
        done_ids.clear();
        progress.n_documents = int64_t(doc_index);
        progress.n_tokens = summary.n_tokens[0] + summary.n_tokens[1];
    };
    read_batch(current);
    while (!current.empty()) {
        // A three-stage pipeline: n_threads workers tokenize this batch while this thread writes
        // the batch before and reads the next one, so reading and writing take no time from
        // the tokenizing.
        ids.resize(current.size());
        std::exception_ptr tokenize_error;
        std::thread tokenizing([&] {
            try {
                parallel_for(current.size(), n_threads, [&](size_t i, int thread) {
                    ids[i].clear();
                    ids[i].push_back(eot);
                    tokenizer.encode_ordinary(current[i], ids[i], &caches[size_t(thread)]);
                });
            } catch (...) {
                tokenize_error = std::current_exception();
            }
        });
        try {
            write_done();
            if (o.on_progress && doc_index > 0) o.on_progress(progress);
            read_batch(next);
        } catch (...) {
            tokenizing.join();
            throw;
        }
        tokenizing.join();
        if (tokenize_error) std::rethrow_exception(tokenize_error);

        std::swap(ids, done_ids);
        done_bytes.clear();
        for (const std::string& doc : current) done_bytes.push_back(int64_t(doc.size()));
        std::swap(current, next);
    }
    write_done();
    progress.bytes_done = reader.bytes_read();  // all of it, separators included, at the end
    if (o.on_progress && doc_index > 0) o.on_progress(progress);
    if (doc_index == 0)
        throw Error("the inputs hold no documents (", files.size(), " files, first ", files[0],
                    "): nothing to prepare");
    writers[0].close();
    // Too few documents for the fraction (one big file, a handful of files): no document drew
    // validation, so the end of the token stream is held out instead, cut inside a document.
    if (summary.n_documents[1] == 0) {
        summary.n_tail_tokens = tail_validation_tokens(summary.n_tokens[0], o.val_fraction);
        if (summary.n_tail_tokens > 0) {
            writers[0].move_tail(uint64_t(summary.n_tail_tokens), writers[1]);
            summary.n_tokens[0] -= summary.n_tail_tokens;
            summary.n_tokens[1] += summary.n_tail_tokens;
        }
    }
    writers[1].close();
    summary.n_bytes = reader.bytes_read();

    save_hf_tokenizer_json(tokenizer.model(), staging + "/tokenizer.json");
    nlohmann::json shards = nlohmann::json::array();
    for (int s = 0; s < 2; ++s) {
        summary.n_shards[s] = int64_t(writers[s].shards().size());
        for (const auto& sh : writers[s].shards()) shards.push_back(sh);
    }
    nlohmann::json meta = {
        {"format", "tandem-token-shards"},
        {"version", kShardVersion},
        {"tokenizer", "tokenizer.json"},
        {"tokenizer_source", o.tokenizer_source},
        {"vocab_size", tokenizer.vocab_size()},
        {"eot_id", eot},
        {"token_bytes", token_bytes_for_vocab(tokenizer.vocab_size())},
        {"inputs", files},
        {"input_format", o.format.format == InputFormat::Jsonl ? "jsonl" : "text"},
        {"doc_separator", o.format.separator},
        {"val_fraction", o.val_fraction},
        {"val_split", summary.n_tail_tokens > 0 ? "tail_tokens" : "documents"},
        {"n_bytes", summary.n_bytes},
        {"n_documents", {{"train", summary.n_documents[0]}, {"val", summary.n_documents[1]}}},
        {"n_tokens", {{"train", summary.n_tokens[0]}, {"val", summary.n_tokens[1]}}},
        {"shards", shards}};
    // meta.json is written last: a directory without it is never taken for a finished output.
    write_file_atomic(staging + "/meta.json", meta.dump(2) + "\n");

    fs::remove_all(o.out_dir);
    fs::rename(staging, o.out_dir);
    guard.keep = true;
    return summary;
}

}  // namespace tandem::io

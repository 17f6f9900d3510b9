#include "io/bpe_trainer.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "common/test_util.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/tokenizer_files.h"

namespace tandem::io {
namespace {

// More than one 1 MiB read chunk, so chunk cutting is exercised: the committed torture text
// repeated with a changing number in between.
std::string corpus() {
    std::string base = read_file(testing::test_data_path("interop/data/unicode_torture.txt"));
    std::string text;
    for (int i = 0; text.size() < (3u << 19); ++i)
        text += base + "\n" + std::to_string(i * 7) + "\n";
    return text;
}

// The textbook trainer: recount every pair over all pieces before each merge. Same tie rule as
// train_bpe (highest count, then smallest (left, right)).
std::vector<Merge> naive_train(const std::string& text, int n_merges) {
    std::map<std::string, int64_t> counts;
    Pretokenizer p{std::string(kGpt2Pattern)};
    p.split(text, [&](std::string_view piece) { counts[std::string(piece)] += 1; });
    std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
    for (auto& [w, n] : counts) {
        std::vector<int32_t> ids;
        for (char c : w) ids.push_back(uint8_t(c));
        words.push_back({ids, n});
    }
    std::vector<Merge> merges;
    for (int m = 0; m < n_merges; ++m) {
        std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
        for (auto& [ids, n] : words)
            for (size_t i = 0; i + 1 < ids.size(); ++i) pairs[{ids[i], ids[i + 1]}] += n;
        std::pair<int32_t, int32_t> best;
        int64_t best_n = 0;
        for (auto& [pr, n] : pairs)
            if (n > best_n) best = pr, best_n = n;  // std::map order: smallest pair wins ties
        if (best_n < 2) break;
        int32_t merged = 256 + m;
        merges.push_back({best.first, best.second, merged});
        for (auto& [ids, n] : words) {
            std::vector<int32_t> out;
            for (size_t i = 0; i < ids.size(); ++i) {
                if (i + 1 < ids.size() && ids[i] == best.first && ids[i + 1] == best.second) {
                    out.push_back(merged);
                    ++i;
                } else {
                    out.push_back(ids[i]);
                }
            }
            ids = out;
        }
    }
    return merges;
}

TEST(BpeTrainer, LearnsTheSameMergesAsARecountPerMerge) {
    testing::TempDir dir;
    std::string text = corpus();
    std::string path = dir.write("corpus.txt", text);
    BpeTrainerOptions options;
    options.vocab_size = 256 + 300;
    BpeModel model = train_bpe({path}, options);
    std::vector<Merge> want = naive_train(text, 300);
    ASSERT_EQ(model.merges.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(model.merges[i].left, want[i].left) << "merge " << i;
        EXPECT_EQ(model.merges[i].right, want[i].right) << "merge " << i;
    }
}

TEST(BpeTrainer, WritesATokenizerJsonThatLoadsAndRoundTrips) {
    testing::TempDir dir;
    std::string text = corpus().substr(0, 200000);
    std::string path = dir.write("corpus.txt", text);
    BpeTrainerOptions options;
    options.vocab_size = 1000;
    options.specials = {"<|endoftext|>", "<|im_start|>"};
    BpeModel model = train_bpe({path}, options);
    save_hf_tokenizer_json(model, dir.file("tokenizer.json"));
    BpeTokenizer tok = load_tokenizer(dir.file("tokenizer.json"));
    EXPECT_EQ(tok.vocab_size(), 1000);
    EXPECT_EQ(tok.eot_id(), 998);
    EXPECT_EQ(tok.token_id("<|im_start|>"), 999);
    std::vector<int32_t> ids = tok.encode(text);
    EXPECT_LT(ids.size(), text.size() / 2) << "merges should compress the text they came from";
    EXPECT_EQ(tok.decode(ids), text);
    std::string odd = "<|im_start|>\xff\xfe\xc3 broken UTF-8 <|endoftext|>";
    EXPECT_EQ(tok.decode(tok.encode(odd)), odd);
}

TEST(BpeTrainer, RefusesAVocabularyTooSmallForBytesAndSpecials) {
    testing::TempDir dir;
    BpeTrainerOptions options;
    options.vocab_size = 256;
    options.specials = {"<|endoftext|>"};
    try {
        train_bpe({dir.write("a.txt", "hello")}, options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--vocab-size 256"), std::string::npos) << e.what();
    }
}

TEST(BpeTrainer, NamesAMissingInput) {
    BpeTrainerOptions options;
    options.vocab_size = 300;
    try {
        train_bpe({"/no/such/corpus.txt"}, options);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/no/such/corpus.txt"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace tandem::io

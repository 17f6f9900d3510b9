// tokenizer.json and tokenizer_config.json: NFC, added tokens, BOS/EOS and the chat template as
// the loaders read and the writers write them, and hostile files, each refused with a message
// naming the file and the field.
#include "io/tokenizer_files.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "io/byte_unicode.h"
#include "io/tokenizer_config.h"
#include "tokenizer_test_models.h"

namespace tandem::io {
namespace {

using Ids = std::vector<int32_t>;
using nlohmann::json;
using testing_models::error_of;
using testing_models::tiny_model;

const std::string kCafeNfc = "caf\xC3\xA9";   // é as one code point
const std::string kCafeNfd = "cafe\xCC\x81";  // e + U+0301 COMBINING ACUTE ACCENT

// A model that merges é's two bytes (and "ca"), with <|endoftext|> = 258.
BpeModel accent_model() {
    return tiny_model({{"\xC3", "\xA9"}, {"c", "a"}});
}

TEST(TokenizerNormalization, NfcModelEncodesDecomposedTextAsComposed) {
    BpeModel m = accent_model();
    BpeTokenizer raw(m);
    m.normalize_nfc = true;
    BpeTokenizer nfc(m);
    EXPECT_EQ(nfc.encode(kCafeNfc), (Ids{257, 'f', 256}));
    EXPECT_EQ(nfc.encode(kCafeNfd), (Ids{257, 'f', 256}));
    EXPECT_NE(raw.encode(kCafeNfd), raw.encode(kCafeNfc));
    Ids ordinary;
    nfc.encode_ordinary(kCafeNfd + "<|endoftext|>", ordinary);
    EXPECT_EQ(Ids(ordinary.begin(), ordinary.begin() + 3), (Ids{257, 'f', 256}));
    EXPECT_EQ(nfc.decode(nfc.encode(kCafeNfd)), kCafeNfc);
}

// Hugging Face cuts the raw text at tokens with normalized=false, and looks for normalized ones
// (their own text normalized too) in the normalized parts.
TEST(TokenizerNormalization, AddedTokensMatchRawOrNormalizedTextAsTheirFlagSays) {
    BpeModel m = accent_model();
    m.normalize_nfc = true;
    m.added.push_back({"<" + kCafeNfd + ">", 259, true, /*normalized=*/false});
    m.added.push_back({"[" + kCafeNfd + "]", 260, false, /*normalized=*/true});
    BpeTokenizer tok(m);
    EXPECT_EQ(tok.encode("<" + kCafeNfd + ">"), (Ids{259}));
    EXPECT_NE(tok.encode("<" + kCafeNfc + ">"), (Ids{259}));  // raw text differs
    EXPECT_EQ(tok.encode("[" + kCafeNfd + "]"), (Ids{260}));
    EXPECT_EQ(tok.encode("[" + kCafeNfc + "]"), (Ids{260}));
    EXPECT_EQ(tok.encode("x<|endoftext|>"), (Ids{'x', 258}));
}

// A GGUF may ask for BOS without naming one: nothing is added, and the files written say so.
TEST(TokenizerFiles, AddBosWithoutABosTokenAddsNothingAndIsWrittenSo) {
    BpeModel m = accent_model();
    m.add_bos = true;
    m.eos_id = 258, m.add_eos = true;
    EXPECT_EQ(BpeTokenizer(m).encode_with_special("ca"), (Ids{257, 258}));
    testing::TempDir dir;
    save_hf_tokenizer_json(m, dir.file("tokenizer.json"));
    save_tokenizer_config_json(m, dir.file("tokenizer_config.json"));
    BpeModel back = load_tokenizer_model(dir.path());
    EXPECT_FALSE(back.add_bos);
    EXPECT_TRUE(back.add_eos);
    EXPECT_EQ(BpeTokenizer(back).encode_with_special("ca"), (Ids{257, 258}));
}

TEST(TokenizerNormalization, EncodeWithSpecialPutsBosAndEosAround) {
    BpeModel m = accent_model();
    m.added.push_back({"<s>", 259, true});
    m.bos_id = 259, m.eos_id = 258;
    BpeTokenizer plain(m);
    EXPECT_EQ(plain.encode_with_special("ca"), (Ids{257}));  // add_bos/add_eos false: nothing
    m.add_bos = m.add_eos = true;
    BpeTokenizer tok(m);
    EXPECT_EQ(tok.encode_with_special("ca"), (Ids{259, 257, 258}));
    EXPECT_EQ(tok.encode("ca"), (Ids{257}));
}

// The model of accent_model() with every field the config carries set.
BpeModel full_model() {
    BpeModel m = accent_model();
    m.normalize_nfc = true;
    m.added.push_back({"<|im_start|>", 259, true});
    m.added.push_back({"<think>", 260, false, true});
    m.bos_id = 259, m.eos_id = 258, m.pad_id = 258;
    m.add_bos = true;
    m.chat_template = "{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}";
    return m;
}

TEST(TokenizerFiles, TokenizerJsonAndConfigRoundTripEveryField) {
    testing::TempDir dir;
    BpeModel m = full_model();
    save_hf_tokenizer_json(m, dir.file("tokenizer.json"));
    save_tokenizer_config_json(m, dir.file("tokenizer_config.json"));
    for (const std::string& path : {dir.path(), dir.file("tokenizer.json")}) {
        BpeModel back = load_tokenizer_model(path);
        EXPECT_EQ(back.tokens, m.tokens);
        EXPECT_TRUE(back.normalize_nfc);
        EXPECT_EQ(back.bos_id, 259);
        EXPECT_EQ(back.eos_id, 258);
        EXPECT_EQ(back.pad_id, 258);
        EXPECT_TRUE(back.add_bos);
        EXPECT_FALSE(back.add_eos);
        EXPECT_EQ(back.chat_template, m.chat_template);
        ASSERT_EQ(back.added.size(), 3u);
        EXPECT_EQ(back.added[2].content, "<think>");
        EXPECT_FALSE(back.added[2].is_special);
        EXPECT_TRUE(back.added[2].normalized);
        EXPECT_EQ(BpeTokenizer(back).encode_with_special(kCafeNfd + "<think>"),
                  BpeTokenizer(m).encode_with_special(kCafeNfc + "<think>"));
    }
    // Without the config, tokenizer.json alone still says NFC and BOS (its post_processor).
    testing::TempDir alone;
    save_hf_tokenizer_json(m, alone.file("tokenizer.json"));
    BpeModel back = load_tokenizer_model(alone.file("tokenizer.json"));
    EXPECT_TRUE(back.normalize_nfc);
    EXPECT_TRUE(back.add_bos);
    EXPECT_EQ(back.bos_id, 259);
    EXPECT_EQ(back.pad_id, -1);
}

TEST(TokenizerFiles, ConfigAddsTokensNamesSpecialsAndPicksTheDefaultTemplate) {
    testing::TempDir dir;
    save_hf_tokenizer_json(accent_model(), dir.file("tokenizer.json"));
    dir.write("tokenizer_config.json", R"({
        "added_tokens_decoder": {
            "258": {"content": "<|endoftext|>", "special": true},
            "259": {"content": "<|im_start|>", "special": true, "normalized": false}},
        "bos_token": {"content": "<|endoftext|>", "lstrip": false},
        "eos_token": "<|im_start|>",
        "pad_token": null,
        "add_bos_token": true,
        "add_eos_token": false,
        "model_max_length": 1e30,
        "chat_template": [{"name": "tool_use", "template": "T"},
                          {"name": "default", "template": "{{ bos_token }}D"}]})");
    BpeTokenizer tok = load_tokenizer(dir.path());
    EXPECT_EQ(tok.token_id("<|im_start|>"), 259);
    EXPECT_EQ(tok.model().bos_id, 258);
    EXPECT_EQ(tok.model().eos_id, 259);
    EXPECT_EQ(tok.model().pad_id, -1);
    EXPECT_EQ(tok.model().chat_template, "{{ bos_token }}D");
    EXPECT_EQ(tok.encode_with_special("ca<|im_start|>"), (Ids{258, 257, 259}));
}

// A TemplateProcessing post_processor (Llama 3) adds BOS; add_bos_token in the config overrides.
TEST(TokenizerFiles, PostProcessorAddsBosUnlessTheConfigSaysOtherwise) {
    testing::TempDir dir;
    BpeModel m = accent_model();
    m.bos_id = 258, m.add_bos = true;
    save_hf_tokenizer_json(m, dir.file("tokenizer.json"));
    EXPECT_EQ(load_tokenizer(dir.path()).encode_with_special("ca"), (Ids{258, 257}));
    dir.write("tokenizer_config.json", R"({"add_bos_token": false})");
    EXPECT_EQ(load_tokenizer(dir.path()).encode_with_special("ca"), (Ids{257}));
}

// --- hostile tokenizer.json ---

json base_json() {
    BpeModel m = accent_model();
    m.bos_id = 258, m.add_bos = true;
    return json::parse(to_hf_tokenizer_json(m));
}

// Writes `j` (or `text`) as tokenizer.json and expects an error naming the file and `field`.
void expect_refused(const std::string& text, const std::string& field) {
    testing::TempDir dir;
    std::string path = dir.write("tokenizer.json", text);
    std::string what = error_of([&] { load_tokenizer(path); });
    EXPECT_NE(what.find(path + ": "), std::string::npos) << what;
    EXPECT_NE(what.find(field), std::string::npos) << "want '" << field << "' in: " << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
}

TEST(TokenizerFilesHostile, TruncatedTokenizerJsonIsNamedAtEveryLength) {
    const std::string text = base_json().dump();
    for (size_t n = 0; n < text.size(); n += 61)
        expect_refused(text.substr(0, n), "not valid JSON");
}

TEST(TokenizerFilesHostile, WrongTypesAndBadIdsAreNamedByField) {
    const std::string a = bytes_to_unicode("a");
    struct Case {
        std::function<void(json&)> edit;
        std::string field;
    };
    const std::vector<Case> cases = {
        {[](json& j) { j = json::array(); }, "the top level is an array"},
        {[](json& j) { j["model"] = "BPE"; }, "model is a string"},
        {[](json& j) { j["model"]["type"] = 7; }, "model.type is a number"},
        {[](json& j) { j["model"]["vocab"] = json::array(); }, "model.vocab is an array"},
        {[&](json& j) { j["model"]["vocab"][a] = "97"; }, "model.vocab[\"a\"] is a string"},
        {[&](json& j) { j["model"]["vocab"][a] = -1; }, "model.vocab[\"a\"]"},
        {[&](json& j) { j["model"]["vocab"][a] = 4294967296ull; }, "model.vocab[\"a\"]"},
        {[&](json& j) { j["model"]["vocab"][a] = 16777215; }, "model.vocab[\"a\"] is 16777215"},
        {[&](json& j) { j["model"]["vocab"][a] = 98; }, "which another entry already has"},
        {[&](json& j) { j["model"]["vocab"][a] = 1.5; }, "model.vocab[\"a\"] is a number"},
        {[](json& j) { j["model"]["merges"] = 5; }, "model.merges is a number"},
        {[](json& j) { j["model"]["merges"][0] = 7; }, "model.merges[0] is a number"},
        {[](json& j) { j["model"]["merges"][1] = "c zzz"; }, "model.merges[1] ('c' 'zzz')"},
        {[](json& j) { j["model"]["merges"][0] = json::array({"c"}); }, "model.merges[0]"},
        {[](json& j) { j["model"]["merges"][0] = "c a b"; }, "model.merges[0]"},
        {[](json& j) { j["model"]["byte_fallback"] = true; }, "model.byte_fallback"},
        {[](json& j) { j["model"]["ignore_merges"] = "yes"; }, "model.ignore_merges is a string"},
        {[](json& j) { j["added_tokens"] = json::object(); }, "added_tokens is an object"},
        {[](json& j) { j["added_tokens"][0]["id"] = -5; }, "added_tokens[0].id"},
        {[](json& j) { j["added_tokens"][0]["id"] = 1000000000; }, "added_tokens[0].id"},
        {[](json& j) { j["added_tokens"][0]["id"] = "258"; }, "added_tokens[0].id is a string"},
        {[](json& j) { j["added_tokens"][0]["content"] = 3; }, "added_tokens[0].content"},
        {[](json& j) { j["added_tokens"][0]["content"] = ""; }, "added_tokens[0].content is empty"},
        {[](json& j) { j["added_tokens"][0]["special"] = "yes"; }, "added_tokens[0].special"},
        {[](json& j) { j["added_tokens"].push_back(j["added_tokens"][0]); },
         "added_tokens[1] has id"},
        {[](json& j) {
             j["normalizer"] = {{"type", "NFKC"}};
         },
         "normalizer.type 'NFKC'"},
        {[](json& j) {
             j["normalizer"] = {{"type", "Sequence"},
                                {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
         },
         "normalizer.normalizers[1].type 'Lowercase'"},
        {[](json& j) { j["pre_tokenizer"] = 3; }, "pre_tokenizer is a number"},
        {[](json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }, "add_prefix_space"},
        {[](json& j) {
             j["post_processor"] = {{"type", "RobertaProcessing"}};
         },
         "post_processor.type 'RobertaProcessing'"},
        {[](json& j) { j["post_processor"]["special_tokens"]["<|endoftext|>"]["ids"][0] = 99999; },
         "post_processor.special_tokens[\"<|endoftext|>\"].ids[0]"},
        {[](json& j) { j["post_processor"]["single"] = json::array(); },
         "post_processor.single has no $A"},
        {[](json& j) { j["post_processor"]["single"][0] = 1; }, "post_processor.single[0]"},
    };
    for (const Case& c : cases) {
        json j = base_json();
        c.edit(j);
        SCOPED_TRACE(c.field);
        expect_refused(j.dump(), c.field);
    }
}

TEST(TokenizerFilesHostile, VocabularyLargerThanTheFileIsNeverAllocated) {
    // One entry claiming id 2^24 - 1 in a file of 8 KB: refused by the id bound, not allocated.
    json j = base_json();
    j["model"]["vocab"]["zz"] = 16777215;
    expect_refused(j.dump(), "model.vocab[\"zz\"] is 16777215 but ids must be in [0, ");
}

// --- hostile tokenizer_config.json ---

void expect_config_refused(const std::string& text, const std::string& field) {
    testing::TempDir dir;
    save_hf_tokenizer_json(accent_model(), dir.file("tokenizer.json"));
    std::string path = dir.write("tokenizer_config.json", text);
    std::string what = error_of([&] { load_tokenizer(dir.file("tokenizer.json")); });
    EXPECT_NE(what.find(path + ": "), std::string::npos) << what;
    EXPECT_NE(what.find(field), std::string::npos) << "want '" << field << "' in: " << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
}

TEST(TokenizerFilesHostile, TruncatedConfigIsNamedAtEveryLength) {
    const std::string text = to_tokenizer_config_json(full_model());
    for (size_t n = 0; n < text.size(); n += 37)
        expect_config_refused(text.substr(0, n), "not valid JSON");
}

TEST(TokenizerFilesHostile, ConfigWrongTypesAndUnknownTokensAreNamedByField) {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"[]", "the top level is an array"},
        {R"({"model_max_length": 3E3333})", "not valid JSON"},  // found by the config fuzzer
        {R"({"added_tokens_decoder": []})", "added_tokens_decoder is an array"},
        {R"({"added_tokens_decoder": {"abc": {"content": "x"}}})", "added_tokens_decoder[\"abc\"]"},
        {R"({"added_tokens_decoder": {"99999999999": {"content": "x"}}})",
         "added_tokens_decoder[\"99999999999\"]"},
        {R"({"added_tokens_decoder": {"259": {"content": 5}}})",
         "added_tokens_decoder[\"259\"].content is a number"},
        {R"({"added_tokens_decoder": {"259": 5}})", "added_tokens_decoder[\"259\"] is a number"},
        {R"({"added_tokens_decoder": {"258": {"content": "<other>"}}})",
         "tokenizer.json gives id 258 to '<|endoftext|>'"},
        {R"({"added_tokens_decoder": {"97": {"content": "<x>"}}})", "added_tokens_decoder[\"97\"]"},
        {R"({"added_tokens_decoder": {"259": {"content": "<x>", "special": 1}}})",
         "added_tokens_decoder[\"259\"].special"},
        {R"({"bos_token": 5})", "bos_token is a number"},
        {R"({"bos_token": "<nope>"})", "bos_token is '<nope>'"},
        {R"({"eos_token": {"lstrip": true}})", "eos_token.content is missing"},
        {R"({"pad_token": {"content": []}})", "pad_token.content is an array"},
        {R"({"add_bos_token": "yes"})", "add_bos_token is a string"},
        {R"({"add_bos_token": true})", "add_bos_token is true but there is no bos_token"},
        {R"({"add_eos_token": true})", "add_eos_token is true but there is no eos_token"},
        {R"({"chat_template": 5})", "chat_template is a number"},
        {R"({"chat_template": [{"name": "rag", "template": "x"}]})",
         "no template named \"default\" (it has: rag)"},
        {R"({"chat_template": [{"name": "default"}]})", "chat_template[0].template is missing"},
        {R"({"chat_template": [7]})", "chat_template[0] is a number"},
    };
    for (const auto& [text, field] : cases) {
        SCOPED_TRACE(text);
        expect_config_refused(text, field);
    }
}

}  // namespace
}  // namespace tandem::io

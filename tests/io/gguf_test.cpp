#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error_message.h"
#include "core/error.h"
#include "core/quant.h"

namespace tandem::io {
namespace {

namespace fs = std::filesystem;

// Builds GGUF bytes by hand, so that each hostile case can be written exactly.
struct RawGguf {
    std::string bytes;
    template <typename T>
    RawGguf& put(T v) {
        bytes.append(reinterpret_cast<const char*>(&v), sizeof(T));
        return *this;
    }
    RawGguf& str(std::string_view s) {
        put<uint64_t>(s.size());
        bytes.append(s);
        return *this;
    }
    RawGguf& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
        bytes.append("GGUF");
        return put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
    }
    // One tensor info; ne in GGML order.
    RawGguf& tensor(std::string_view name, std::vector<int64_t> ne, uint32_t type,
                    uint64_t offset) {
        str(name).put<uint32_t>(uint32_t(ne.size()));
        for (int64_t d : ne) put<int64_t>(d);
        return put<uint32_t>(type).put<uint64_t>(offset);
    }
    RawGguf& pad(size_t alignment = 32) {
        bytes.append((alignment - bytes.size() % alignment) % alignment, '\0');
        return *this;
    }
    RawGguf& data(size_t n) {
        bytes.append(n, '\x01');
        return *this;
    }
};

class Gguf : public ::testing::Test {
   protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("tandem_gguf_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    std::string write(const std::string& name, const std::string& bytes) {
        std::ofstream(path(name), std::ios::binary) << bytes;
        return path(name);
    }

    // The reader must refuse `bytes` with one Error naming the file and each fragment.
    void expect_error(const std::string& bytes, std::vector<std::string> fragments) {
        const std::string file = write("bad.gguf", bytes);
        try {
            GgufReader reader(file);
            FAIL() << "no error; wanted " << fragments[0];
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find(file), std::string::npos) << what;
            for (const auto& f : fragments) EXPECT_NE(what.find(f), std::string::npos) << what;
        }
    }

    fs::path dir_;
};

TEST_F(Gguf, RoundTripsEveryValueType) {
    GgufMetadata md;
    md.set("u8", uint8_t{200});
    md.set("i8", int8_t{-100});
    md.set("u16", uint16_t{60000});
    md.set("i16", int16_t{-30000});
    md.set("u32", uint32_t{4000000000u});
    md.set("i32", int32_t{-2000000000});
    md.set("f32", 1.5f);
    md.set("bool", true);
    md.set("string", std::string("héllo"));
    md.set("u64", uint64_t{1} << 63);
    md.set("i64", int64_t{-(int64_t{1} << 62)});
    md.set("f64", 0.1);
    const std::vector<int32_t> ints = {1, -2, 3};
    md.set("array.i32", GgufArray::of<int32_t>(ints));
    const bool flags[] = {true, false};
    md.set("array.bool", GgufArray::of<bool>(flags));
    const std::vector<double> doubles = {2.25, -1e300};
    md.set("array.f64", GgufArray::of<double>(doubles));
    md.set("array.string", GgufArray::of_strings({"a b", "", "Ġthe"}));
    const std::vector<uint8_t> bytes = {7, 8};
    md.set("array.nested",
           GgufArray::of_arrays({GgufArray::of<uint8_t>(bytes), GgufArray::of<uint8_t>({})}));
    md.set("array.empty", GgufArray::of_strings({}));
    save_gguf(path("v.gguf"), md, {});

    GgufReader r(path("v.gguf"));
    const GgufMetadata& m = r.metadata();
    EXPECT_EQ(r.version(), 3u);
    ASSERT_EQ(m.size(), md.size());
    for (size_t i = 0; i < md.size(); ++i) {
        EXPECT_EQ(m.entries()[i].first, md.entries()[i].first);  // order kept
        EXPECT_EQ(m.entries()[i].second.index(), md.entries()[i].second.index());
    }
    EXPECT_EQ(m.get_int("u8"), 200);
    EXPECT_EQ(m.get_int("i8"), -100);
    EXPECT_EQ(m.get_int("u16"), 60000);
    EXPECT_EQ(m.get_int("i16"), -30000);
    EXPECT_EQ(m.get_int("u32"), 4000000000);
    EXPECT_EQ(m.get_int("i32"), -2000000000);
    EXPECT_EQ(m.get_float("f32"), 1.5);
    EXPECT_TRUE(m.get_bool("bool"));
    EXPECT_EQ(m.get_string("string"), "héllo");
    EXPECT_EQ(std::get<uint64_t>(m.get("u64")), uint64_t{1} << 63);
    EXPECT_EQ(m.get_int("i64"), -(int64_t{1} << 62));
    EXPECT_EQ(m.get_float("f64"), 0.1);
    EXPECT_EQ(m.get_ints("array.i32"), (std::vector<int64_t>{1, -2, 3}));
    const GgufArray& b = m.get_array("array.bool", GgufType::Bool);
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(b.int_at(0), 1);
    EXPECT_EQ(b.int_at(1), 0);
    const GgufArray& d = m.get_array("array.f64", GgufType::F64);
    EXPECT_EQ(d.float_at(0), 2.25);
    EXPECT_EQ(d.float_at(1), -1e300);
    EXPECT_EQ(m.get_strings("array.string"), (std::vector<std::string>{"a b", "", "Ġthe"}));
    const GgufArray& nested = m.get_array("array.nested", GgufType::Array);
    ASSERT_EQ(nested.size(), 2u);
    EXPECT_EQ(nested.arrays[0].type, GgufType::U8);
    EXPECT_EQ(nested.arrays[0].int_at(1), 8);
    EXPECT_EQ(nested.arrays[1].size(), 0u);
    EXPECT_TRUE(m.get_strings("array.empty").empty());
    EXPECT_EQ(m.get_int_or("absent", 7), 7);
    EXPECT_EQ(m.get_string_or("absent", "x"), "x");
}

TEST_F(Gguf, GettersNameTheKeyAndBothTypes) {
    GgufMetadata md("m.gguf");
    md.set("llama.block_count", std::string("two"));
    md.set("tokenizer.ggml.tokens", GgufArray::of<int32_t>(std::vector<int32_t>{1}));
    md.set("big", uint64_t{1} << 63);
    EXPECT_EQ(
        testing::error_message([&] { md.get_int("llama.block_count"); }),
        "m.gguf: metadata key 'llama.block_count' is of type string but an integer was expected");
    EXPECT_EQ(testing::error_message([&] { md.get_strings("tokenizer.ggml.tokens"); }),
              "m.gguf: metadata key 'tokenizer.ggml.tokens' is of type array of i32 but array of "
              "string was expected");
    EXPECT_EQ(testing::error_message([&] { md.get_float("missing.key"); }),
              "m.gguf: metadata has no key 'missing.key'");
    EXPECT_NE(testing::error_message([&] {
                  md.get_int("big");
              }).find("'big' is 9223372036854775808, too large"),
              std::string::npos);
}

TEST_F(Gguf, RoundTripsEveryTensorDtypeWithShapesInTandemOrder) {
    std::vector<float> f32(2 * 3);
    for (size_t i = 0; i < f32.size(); ++i) f32[i] = float(i) - 2.5f;
    std::vector<uint16_t> f16(5), bf16(5);
    for (int i = 0; i < 5; ++i) {
        f16[i] = f16_from_f32(0.25f * float(i));
        bf16[i] = bf16_from_f32(-3.0f * float(i));
    }
    std::vector<float> src(2 * 64);
    for (size_t i = 0; i < src.size(); ++i) src[i] = std::sin(float(i));
    std::vector<uint8_t> q8(dtype_bytes(DType::Q8_0, 128)), q4(dtype_bytes(DType::Q4_0, 128));
    quantize_q8_0(q8.data(), src.data(), 128);
    quantize_q4_0(q4.data(), src.data(), 128);
    std::vector<GgufTensor> tensors = {
        {"blk.0.attn_q.weight", DType::F32, {2, 3}, f32.data()},
        {"f16", DType::F16, {5}, f16.data()},
        {"bf16", DType::BF16, {5, 1, 1, 1}, bf16.data()},
        {"q8", DType::Q8_0, {2, 64}, q8.data()},
        {"q4", DType::Q4_0, {2, 64}, q4.data()},
    };
    const uint64_t hash = save_gguf(path("t.gguf"), GgufMetadata(), tensors);
    std::ifstream in(path("t.gguf"), std::ios::binary);
    const std::string all((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(hash, xxh3_64(all.data(), all.size()));

    GgufReader r(path("t.gguf"));
    ASSERT_EQ(r.tensors().size(), tensors.size());
    EXPECT_EQ(r.data_offset() % 32, 0u);
    for (size_t i = 0; i < tensors.size(); ++i) {
        const GgufTensor& t = r.tensors()[i];
        EXPECT_EQ(t.name, tensors[i].name);
        EXPECT_EQ(t.dtype, tensors[i].dtype);
        EXPECT_EQ(t.shape, tensors[i].shape);
        EXPECT_EQ(t.offset % 32, 0u);
        ASSERT_EQ(t.bytes, dtype_bytes(t.dtype, tensors[i].numel()));
        EXPECT_EQ(std::memcmp(t.data, tensors[i].data, t.bytes), 0) << t.name;
    }
    // ne[0] is the last tandem dimension: the F32 [2, 3] tensor is stored as ne = {3, 2}.
    const size_t info = 4 + 4 + 8 + 8 + 8 + std::string("blk.0.attn_q.weight").size();
    int64_t ne[2];
    std::memcpy(ne, all.data() + info + 4, 16);
    EXPECT_EQ(ne[0], 3);
    EXPECT_EQ(ne[1], 2);
    EXPECT_EQ(r.get("q8", {2, 64}).dtype, DType::Q8_0);
    EXPECT_THROW(r.get("q8", {64, 2}), Error);
    EXPECT_THROW(r.get("absent"), Error);
}

TEST_F(Gguf, ReadsVersionTwoAndAnAlignmentFromTheMetadata) {
    RawGguf g;
    g.header(1, 1, 2).str("general.alignment").put<uint32_t>(4).put<uint32_t>(64);
    g.tensor("x", {4}, 0, 0).pad(64).data(16);
    const std::string file = write("v2.gguf", g.bytes);
    GgufReader r(file);
    EXPECT_EQ(r.version(), 2u);
    EXPECT_EQ(r.alignment(), 64u);
    EXPECT_EQ(r.data_offset(), 128u);  // 90 bytes of header and info, padded
    EXPECT_EQ(r.get("x").shape, std::vector<int64_t>{4});

    GgufMetadata md;
    md.set("general.alignment", uint32_t{64});
    float x[3] = {1, 2, 3};
    std::vector<GgufTensor> ts = {{"a", DType::F32, {3}, x}, {"b", DType::F32, {1}, x}};
    save_gguf(path("a64.gguf"), md, ts);
    GgufReader back(path("a64.gguf"));
    EXPECT_EQ(back.get("b").offset, 64u);
    EXPECT_EQ(back.data_offset() % 64, 0u);
}

TEST_F(Gguf, ReadsFromMemory) {
    RawGguf g;
    g.header(1, 0).tensor("x", {2}, 0, 0).pad().data(8);
    GgufReader r(g.bytes.data(), g.bytes.size(), "memory");
    EXPECT_EQ(r.path(), "memory");
    EXPECT_EQ(r.get("x").data, g.bytes.data() + r.data_offset());
}

// ---- hostile input: each case one Error that names the file and the culprit ----

TEST_F(Gguf, RejectsFilesThatAreNotGguf) {
    expect_error("", {"not a GGUF file"});
    expect_error("GGML\x03\0\0\0", {"not a GGUF file"});
}

TEST_F(Gguf, RejectsVersionOneByName) {
    RawGguf g;
    g.header(0, 0, 1);
    expect_error(g.bytes, {"GGUF version 1 is not supported"});
    RawGguf h;
    h.header(0, 0, 4);
    expect_error(h.bytes, {"GGUF version 4 is not supported"});
    RawGguf big;
    big.header(0, 0, 0x03000000);
    expect_error(big.bytes, {"big-endian"});
}

TEST_F(Gguf, RejectsTruncatedHeader) {
    RawGguf g;
    g.header(0, 0);
    expect_error(g.bytes.substr(0, 12), {"truncated", "tensor count"});
}

TEST_F(Gguf, RejectsAbsurdCounts) {
    RawGguf kv;
    kv.header(0, uint64_t{1} << 60);
    expect_error(kv.bytes, {"metadata count is 1152921504606846976", "hold at most 0"});
    RawGguf t;
    t.header(uint64_t{1} << 62, 0).data(100);
    expect_error(t.bytes, {"tensor count is 4611686018427387904", "hold at most 4 tensor infos"});
    RawGguf arr;
    arr.header(0, 1).str("tokenizer.ggml.tokens").put<uint32_t>(9).put<uint32_t>(8);
    arr.put<uint64_t>(uint64_t{1} << 40).data(64);
    expect_error(arr.bytes, {"metadata 'tokenizer.ggml.tokens''s element count is 1099511627776",
                             "hold at most 8"});
}

TEST_F(Gguf, RejectsStringThatRunsPastEndOfFile) {
    RawGguf key;
    key.header(0, 1).put<uint64_t>(1000).data(10);
    expect_error(key.bytes, {"metadata key 0 has length 1000", "runs past the end"});
    RawGguf value;
    value.header(0, 1).str("general.name").put<uint32_t>(8).put<uint64_t>(50).data(5);
    expect_error(value.bytes, {"metadata 'general.name' has length 50", "runs past the end"});
    RawGguf in_array;
    in_array.header(0, 1).str("a").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(2);
    in_array.str("ok").put<uint64_t>(uint64_t(-1));
    expect_error(in_array.bytes, {"metadata 'a'[1] has length 18446744073709551615"});
}

TEST_F(Gguf, RejectsValueThatRunsPastEndOfFile) {
    RawGguf g;
    g.header(0, 1).str("llama.block_count").put<uint32_t>(4).put<uint16_t>(2);
    expect_error(g.bytes, {"truncated", "metadata 'llama.block_count' needs 4 bytes"});
}

TEST_F(Gguf, RejectsBadValueTypesAndBools) {
    RawGguf type;
    type.header(0, 1).str("k").put<uint32_t>(13).data(8);
    expect_error(type.bytes, {"metadata 'k' has type 13, which is no GGUF type"});
    RawGguf elem;
    elem.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(77).put<uint64_t>(0);
    expect_error(elem.bytes, {"metadata 'k' has element type 77"});
    RawGguf b;
    b.header(0, 1).str("flag").put<uint32_t>(7).put<uint8_t>(2);
    expect_error(b.bytes, {"metadata 'flag' is a bool of value 2"});
}

TEST_F(Gguf, RejectsArraysNestedTooDeep) {
    RawGguf g;
    g.header(0, 1).str("deep").put<uint32_t>(9);
    for (int i = 0; i < 20; ++i) g.put<uint32_t>(9).put<uint64_t>(1);
    g.put<uint32_t>(0).put<uint64_t>(0);
    expect_error(g.bytes, {"metadata 'deep'", "nests arrays more than 8 deep"});
}

TEST_F(Gguf, RejectsDuplicateKeysAndTensorNames) {
    RawGguf k;
    k.header(0, 2).str("general.name").put<uint32_t>(8).str("a");
    k.str("general.name").put<uint32_t>(8).str("b");
    expect_error(k.bytes, {"metadata key 'general.name' appears twice"});
    RawGguf t;
    t.header(2, 0).tensor("token_embd.weight", {4}, 0, 0).tensor("token_embd.weight", {4}, 0, 32);
    t.pad().data(64);
    expect_error(t.bytes, {"tensor 'token_embd.weight' appears twice"});
}

TEST_F(Gguf, RejectsBadAlignment) {
    RawGguf g;
    g.header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(48);
    expect_error(g.bytes, {"general.alignment is 48, which is not a power of two"});
    RawGguf t;
    t.header(0, 1).str("general.alignment").put<uint32_t>(10).put<uint64_t>(32);
    expect_error(t.bytes, {"general.alignment is of type u64 but u32 was expected"});
}

TEST_F(Gguf, RejectsUnsupportedTensorTypeByName) {
    RawGguf g;
    g.header(1, 0).tensor("blk.0.ffn_down.weight", {256}, 12, 0).pad().data(256);
    expect_error(g.bytes, {"tensor 'blk.0.ffn_down.weight' has type Q4_K (12), which tandem "
                           "does not read (it reads F32, F16, BF16, Q8_0, Q4_0)"});
    RawGguf u;
    u.header(1, 0).tensor("x", {4}, 1000, 0).pad().data(32);
    expect_error(u.bytes, {"tensor 'x' has type unknown (1000)"});
}

TEST_F(Gguf, RejectsTooManyDimensions) {
    RawGguf g;
    g.header(1, 0).tensor("x", {1, 1, 1, 1, 1}, 0, 0).pad().data(32);
    expect_error(g.bytes, {"tensor 'x' has 5 dimensions"});
}

TEST_F(Gguf, RejectsDimensionsWhoseProductOverflows) {
    RawGguf g;
    g.header(1, 0).tensor("x", {int64_t{1} << 32, int64_t{1} << 32}, 0, 0).pad().data(32);
    expect_error(g.bytes, {"tensor 'x'", "multiply past 2^63"});
    RawGguf bytes;  // 2^62 f32 values fit int64 but not a byte count
    bytes.header(1, 0).tensor("y", {int64_t{1} << 62}, 0, 0).pad().data(32);
    expect_error(bytes.bytes, {"tensor 'y' needs more than 2^64 bytes"});
    RawGguf neg;
    neg.header(1, 0).tensor("z", {-4}, 0, 0).pad().data(32);
    expect_error(neg.bytes, {"tensor 'z' has negative dimension -4"});
}

TEST_F(Gguf, RejectsBlockTypeWhoseFirstDimIsNotWholeBlocks) {
    RawGguf g;
    g.header(1, 0).tensor("blk.0.attn_k.weight", {48, 2}, 8, 0).pad().data(256);
    expect_error(g.bytes, {"tensor 'blk.0.attn_k.weight' is q8_0",
                           "ne[0] = 48) is not a whole number of 32-value blocks"});
}

TEST_F(Gguf, RejectsTensorThatRunsPastEndOfFile) {
    RawGguf g;
    g.header(1, 0).tensor("output.weight", {8, 4}, 0, 0).pad().data(100);  // needs 128
    expect_error(g.bytes, {"tensor 'output.weight'", "128 bytes at data offset 0",
                           "runs past the end of the file", "holds 100 bytes"});
    RawGguf far;
    far.header(1, 0).tensor("x", {4}, 0, uint64_t(-32)).pad().data(64);
    expect_error(far.bytes, {"tensor 'x'", "runs past the end of the file"});
    RawGguf no_data;  // the infos end where the data section should begin
    no_data.header(1, 0).tensor("x", {4}, 0, 0);
    expect_error(no_data.bytes, {"truncated: the data section would start at offset"});
}

TEST_F(Gguf, RejectsMisalignedTensor) {
    RawGguf g;
    g.header(1, 0).tensor("x", {4}, 0, 8).pad().data(64);
    expect_error(g.bytes,
                 {"tensor 'x' starts at data offset 8", "not a multiple of the alignment 32"});
}

TEST_F(Gguf, RejectsOverlappingTensors) {
    RawGguf g;
    g.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {8}, 0, 32).pad().data(128);
    expect_error(g.bytes, {"tensors 'a' and 'b' overlap"});
}

TEST_F(Gguf, WriterRefusesWhatLlamaCppCannotRead) {
    float x[64] = {};
    std::vector<GgufTensor> long_name = {{std::string(64, 'n'), DType::F32, {1}, x}};
    EXPECT_THROW(save_gguf(path("a.gguf"), GgufMetadata(), long_name), Error);
    std::vector<GgufTensor> five = {{"x", DType::F32, {1, 1, 1, 1, 1}, x}};
    EXPECT_THROW(save_gguf(path("a.gguf"), GgufMetadata(), five), Error);
    std::vector<GgufTensor> ragged = {{"x", DType::Q8_0, {32, 2}, x}};
    EXPECT_THROW(save_gguf(path("a.gguf"), GgufMetadata(), ragged), Error);
    EXPECT_FALSE(fs::exists(path("a.gguf")));
}

}  // namespace
}  // namespace tandem::io

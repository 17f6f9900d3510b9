#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace tandem::io {
namespace {

namespace fs = std::filesystem;

class Safetensors : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("tandem_st_" + std::to_string(::getpid()) + "_" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    // A raw file: header JSON as given, then `data_bytes` bytes of data.
    std::string write_raw(const std::string& name, const std::string& header, size_t data_bytes) {
        std::string bytes(8, '\0');
        const uint64_t n = header.size();
        std::memcpy(bytes.data(), &n, 8);
        bytes += header;
        bytes.append(data_bytes, '\x01');
        std::ofstream(path(name), std::ios::binary) << bytes;
        return path(name);
    }

    void expect_error(const std::string& file, const std::string& fragment) {
        try {
            SafetensorsReader reader(file);
            FAIL() << "no error for " << file;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
        }
    }

    fs::path dir_;
};

TEST_F(Safetensors, RoundTripsTensorsAndMetadataInOrder) {
    std::vector<float> a = {1, 2, 3, 4, 5, 6};
    std::vector<int32_t> b = {7, -8};
    std::vector<uint16_t> c = {bf16_from_f32(1.5f)};
    std::vector<SafetensorsTensor> tensors = {
        {"z.weight", DType::F32, {2, 3}, a.data(), a.size() * 4},
        {"a.ids", DType::I32, {2}, b.data(), b.size() * 4},
        {"m.bf16", DType::BF16, {1}, c.data(), 2},
    };
    save_safetensors(path("x.safetensors"), tensors, {{"format", "pt"}});

    SafetensorsReader reader(path("x.safetensors"));
    ASSERT_EQ(reader.tensors().size(), 3u);
    EXPECT_EQ(reader.tensors()[0].name, "z.weight");
    EXPECT_EQ(reader.metadata().at("format"), "pt");
    const auto& t = reader.get("z.weight", DType::F32, {2, 3});
    EXPECT_EQ(std::memcmp(t.data, a.data(), 24), 0);
    EXPECT_EQ(static_cast<const int32_t*>(reader.get("a.ids").data)[1], -8);
    EXPECT_EQ(f32_from_bf16(*static_cast<const uint16_t*>(reader.get("m.bf16").data)), 1.5f);
    EXPECT_EQ(reader.find("missing"), nullptr);
}

TEST_F(Safetensors, DataAreaIsEightByteAligned) {
    float x = 1;
    std::vector<SafetensorsTensor> tensors = {{"odd_name_length_x", DType::F32, {1}, &x, 4}};
    save_safetensors(path("a.safetensors"), tensors);
    uint64_t n = 0;
    std::ifstream(path("a.safetensors"), std::ios::binary).read(reinterpret_cast<char*>(&n), 8);
    EXPECT_EQ(n % 8, 0u);
}

TEST_F(Safetensors, RejectsTruncatedFile) {
    std::vector<float> a(100, 1.0f);
    std::vector<SafetensorsTensor> tensors = {{"w", DType::F32, {100}, a.data(), 400}};
    save_safetensors(path("t.safetensors"), tensors);
    fs::resize_file(path("t.safetensors"), fs::file_size(path("t.safetensors")) - 10);
    expect_error(path("t.safetensors"), "'w'");
    fs::resize_file(path("t.safetensors"), 5);
    expect_error(path("t.safetensors"), "shorter than");
}

TEST_F(Safetensors, RejectsHeaderLengthPastEnd) {
    std::string file = write_raw("h.safetensors", "{}", 0);
    uint64_t huge = 1000;
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.write(reinterpret_cast<char*>(&huge), 8);
    f.close();
    expect_error(file, "header length 1000");
}

TEST_F(Safetensors, RejectsMalformedJson) {
    expect_error(write_raw("j.safetensors", "{\"w\": {\"dtype\": ", 0), "not valid JSON");
}

TEST_F(Safetensors, RejectsUnsupportedDtypeByName) {
    expect_error(write_raw("d.safetensors", R"({"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1),
                 "F8_E4M3");
}

TEST_F(Safetensors, RejectsSizeThatDisagreesWithShape) {
    expect_error(write_raw("s.safetensors", R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                 "need 12");
}

TEST_F(Safetensors, RejectsOverlappingTensors) {
    expect_error(write_raw("o.safetensors",
                           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
                 "overlap");
}

TEST_F(Safetensors, GetWithWrongShapeNamesBothShapes) {
    std::vector<float> a(6);
    std::vector<SafetensorsTensor> tensors = {{"w", DType::F32, {2, 3}, a.data(), 24}};
    save_safetensors(path("g.safetensors"), tensors);
    SafetensorsReader reader(path("g.safetensors"));
    try {
        reader.get("w", DType::F32, {3, 2});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("f32[2, 3] but f32[3, 2]"), std::string::npos) << e.what();
    }
    EXPECT_THROW(reader.get("nope"), Error);
}

TEST_F(Safetensors, FailedWriteLeavesPreviousFileIntact) {
    write_file_atomic(path("keep.txt"), "old");
    {
        AtomicFile file(path("keep.txt"));
        file.write("new but never committed");
    }
    EXPECT_EQ(read_file(path("keep.txt")), "old");
    for (const auto& entry : fs::directory_iterator(dir_))
        EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos);
}

}  // namespace
}  // namespace tandem::io

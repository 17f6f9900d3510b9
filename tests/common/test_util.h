// Helpers shared by the tests: random host tensors, tensors on a backend, and the relative
// error used by every tolerance in the suite.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/buffer.h"
#include "core/tensor.h"

namespace tandem::testing {

// N(0, scale^2) or U(lo, hi) numbers from a fixed seed, so a failure reproduces.
std::vector<float> random_normal(int64_t n, uint64_t seed, float scale = 1.0f);
std::vector<float> random_uniform(int64_t n, uint64_t seed, float lo, float hi);
std::vector<int32_t> random_ints(int64_t n, uint64_t seed, int32_t lo, int32_t hi);

// ||a - b|| / ||b|| (0 when both are zero): the error measure of every tolerance here.
double relative_error(const std::vector<float>& a, const std::vector<float>& b);
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

// A tensor on a backend that owns its memory, filled from / read back to host vectors.
struct DeviceTensor {
    backend::Buffer buffer;
    Tensor t;

    DeviceTensor() = default;
    DeviceTensor(backend::Backend& be, DType dtype, Shape shape);
    static DeviceTensor from(backend::Backend& be, const std::vector<float>& host, Shape shape,
                             DType dtype = DType::F32);
    static DeviceTensor from_ints(backend::Backend& be, const std::vector<int32_t>& host,
                                  Shape shape);
    std::vector<float> to_host() const;  // converted to f32 from any float dtype
    operator Tensor() const { return t; }
};

// Backends other than reference that are usable here ("cpu", and "cuda" with a GPU).
std::vector<std::string> backends_under_test();

// Runs a shell command and returns its standard output. A non-zero exit is written to `error`
// (unless it already holds one): a suite's setup records it there and fails each test with it,
// since gtest only skips the tests of a suite whose setup failed, and CTest counts that a pass.
std::string run_command(const std::string& command, std::string& error);
// The same, failing the current test on a non-zero exit.
std::string run_command(const std::string& command);

// Where committed fixtures live (tests/), and the built `tandem` program.
std::string test_data_path(const std::string& relative);
std::string tandem_binary();

}  // namespace tandem::testing

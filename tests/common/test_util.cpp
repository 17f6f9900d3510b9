// Random inputs, device tensors and error measures for the tests.
#include "common/test_util.h"

#include <cmath>
#include <cstdio>
#include <random>

#include <gtest/gtest.h>

#include "backend/registry.h"
#include "core/quant.h"

namespace tandem::testing {

std::vector<float> random_normal(int64_t n, uint64_t seed, float scale) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> out(n);
    for (auto& x : out) x = dist(gen);
    return out;
}

std::vector<float> random_uniform(int64_t n, uint64_t seed, float lo, float hi) {
    std::mt19937_64 gen(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> out(n);
    for (auto& x : out) x = dist(gen);
    return out;
}

std::vector<int32_t> random_ints(int64_t n, uint64_t seed, int32_t lo, int32_t hi) {
    std::mt19937_64 gen(seed);
    std::uniform_int_distribution<int32_t> dist(lo, hi - 1);
    std::vector<int32_t> out(n);
    for (auto& x : out) x = dist(gen);
    return out;
}

double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
    TANDEM_ASSERT(a.size() == b.size(), a.size(), b.size());
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
        diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        norm += double(b[i]) * b[i];
    }
    if (norm == 0) return diff == 0 ? 0 : INFINITY;
    return std::sqrt(diff / norm);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
    TANDEM_ASSERT(a.size() == b.size(), a.size(), b.size());
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - b[i]));
    return m;
}

DeviceTensor::DeviceTensor(backend::Backend& be, DType dtype, Shape shape)
    : buffer(be, dtype_bytes(dtype, shape.numel())),
      t(buffer.tensor(dtype, shape)) {
    be.fill_zero(t);
}

DeviceTensor DeviceTensor::from(backend::Backend& be, const std::vector<float>& host, Shape shape,
                                DType dtype) {
    TANDEM_ASSERT(static_cast<int64_t>(host.size()) == shape.numel(), host.size(), shape.str());
    DeviceTensor out(be, dtype, shape);
    std::vector<char> bytes(out.t.bytes());
    if (dtype == DType::I32) {
        for (size_t i = 0; i < host.size(); ++i)
            reinterpret_cast<int32_t*>(bytes.data())[i] = static_cast<int32_t>(host[i]);
    } else {
        convert_values(bytes.data(), dtype, host.data(), DType::F32, out.t.numel());
    }
    be.copy_to_device(out.t.data, bytes.data(), bytes.size());
    return out;
}

DeviceTensor DeviceTensor::from_ints(backend::Backend& be, const std::vector<int32_t>& host,
                                     Shape shape) {
    TANDEM_ASSERT(static_cast<int64_t>(host.size()) == shape.numel(), host.size(), shape.str());
    DeviceTensor out(be, DType::I32, shape);
    be.copy_to_device(out.t.data, host.data(), host.size() * sizeof(int32_t));
    return out;
}

std::vector<float> DeviceTensor::to_host() const {
    std::vector<char> bytes(t.bytes());
    buffer.backend()->copy_to_host(bytes.data(), t.data, bytes.size());
    std::vector<float> out(t.numel());
    if (t.dtype == DType::I32) {
        for (size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<float>(reinterpret_cast<const int32_t*>(bytes.data())[i]);
    } else {
        convert_values(out.data(), DType::F32, bytes.data(), t.dtype, t.numel());
    }
    return out;
}

std::vector<std::string> backends_under_test() {
    std::vector<std::string> names;
    for (const auto& name : backend::available_backends())
        if (name != "reference") names.push_back(name);
    return names;
}

std::string run_command(const std::string& command, std::string& error) {
    FILE* pipe = popen(command.c_str(), "r");
    std::string out;
    char buffer[1 << 16];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
    const int status = pclose(pipe);
    if (status != 0 && error.empty())
        error = command + " failed (status " + std::to_string(status) + "); its output:\n" + out;
    return out;
}

std::string run_command(const std::string& command) {
    std::string error;
    std::string out = run_command(command, error);
    EXPECT_TRUE(error.empty()) << error;
    return out;
}

std::string test_data_path(const std::string& relative) {
    return std::string(TANDEM_TEST_DATA) + "/" + relative;
}

std::string tandem_binary() { return TANDEM_BINARY; }

}  // namespace tandem::testing

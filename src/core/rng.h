// Counter-based random numbers (Philox4x32-10, Salmon et al., SC'11). A draw is a pure function
// of (seed, purpose, step, rank, index): nothing to carry between calls, so every backend and
// every resumed run produces the same numbers for the same key.
#pragma once

#include <array>
#include <cstdint>

namespace tandem {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key);

// What a stream of draws is for; streams of different purposes never overlap.
enum class RngPurpose : uint16_t { Init = 1, DataOrder = 2, Sampling = 3, Dropout = 4, Compression = 5 };

// The key of one stream. `step` is the training step (or the tensor index for initialisation).
struct RngKey {
    uint64_t seed = 0;
    RngPurpose purpose = RngPurpose::Init;
    uint16_t rank = 0;
    uint32_t step = 0;
};

// Four 32-bit words for block `block` of the stream: element i of a stream is word i % 4 of
// block i / 4.
PhiloxCounter random_block(const RngKey& key, uint64_t block);
uint32_t random_u32(const RngKey& key, uint64_t index);
// Uniform in [0, 1) with 24 random bits: exactly representable in f32.
float random_uniform(const RngKey& key, uint64_t index);
// Standard normal by Box-Muller over the pair of uniforms that shares `index`'s block half.
// Computed in double and rounded once, so the f32 result does not depend on the libm's float
// functions; backends that need normals draw them on the host.
float random_normal(const RngKey& key, uint64_t index);

void fill_uniform(float* out, int64_t n, const RngKey& key, uint64_t first_index = 0);
void fill_normal(float* out, int64_t n, const RngKey& key, uint64_t first_index = 0);

}  // namespace tandem

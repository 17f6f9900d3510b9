// Philox4x32-10 and the uniform and normal draws built on it.
#include "core/rng.h"

#include <cmath>

namespace tandem {

namespace {
constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;    // round multipliers
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key schedule increments

inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    const uint64_t product = static_cast<uint64_t>(a) * b;
    hi = static_cast<uint32_t>(product >> 32);
    lo = static_cast<uint32_t>(product);
}
}  // namespace

PhiloxCounter philox4x32_10(PhiloxCounter c, PhiloxKey k) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k[0] += kWeyl0;
            k[1] += kWeyl1;
        }
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(kMul0, c[0], hi0, lo0);
        mulhilo(kMul1, c[2], hi1, lo1);
        c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    }
    return c;
}

PhiloxCounter random_block(const RngKey& key, uint64_t block) {
    const PhiloxCounter counter = {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                                   key.step,
                                   static_cast<uint32_t>(key.purpose) | (uint32_t{key.rank} << 16)};
    return philox4x32_10(counter, {static_cast<uint32_t>(key.seed),
                                   static_cast<uint32_t>(key.seed >> 32)});
}

uint32_t random_u32(const RngKey& key, uint64_t index) { return random_block(key, index / 4)[index % 4]; }

namespace {
inline float uniform_from_u32(uint32_t x) { return static_cast<float>(x >> 8) * 0x1p-24f; }

inline float normal_from_pair(uint32_t a, uint32_t b, bool second) {
    // u1 in (0, 1] so that log(u1) is finite.
    const double u1 = (static_cast<double>(a >> 8) + 1.0) * 0x1p-24;
    const double u2 = static_cast<double>(b >> 8) * 0x1p-24;
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * M_PI * u2;
    return static_cast<float>(radius * (second ? std::sin(angle) : std::cos(angle)));
}
}  // namespace

float random_uniform(const RngKey& key, uint64_t index) { return uniform_from_u32(random_u32(key, index)); }

float random_normal(const RngKey& key, uint64_t index) {
    const PhiloxCounter words = random_block(key, index / 4);
    const int lane = static_cast<int>(index % 4);
    const int pair = lane & ~1;
    return normal_from_pair(words[pair], words[pair + 1], lane & 1);
}

void fill_uniform(float* out, int64_t n, const RngKey& key, uint64_t first_index) {
    for (int64_t i = 0; i < n; ++i) out[i] = random_uniform(key, first_index + i);
}

void fill_normal(float* out, int64_t n, const RngKey& key, uint64_t first_index) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) out[i] = random_normal(key, first_index + i);
}

}  // namespace tandem

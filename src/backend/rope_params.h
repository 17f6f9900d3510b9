// What the RoPE kernels need to know about a model's rotary frequencies: the base theta and
// Llama 3's per-frequency rescaling. A plain struct passed by value down to the CUDA kernels,
// so inv_freq() is written once for the host and the device; reference/ spells the same math
// out on its own, and tests/backend compares the two.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define TANDEM_HOST_DEVICE __host__ __device__
#else
#define TANDEM_HOST_DEVICE
#endif

namespace tandem::backend {

// Llama 3.1's rescaling (transformers' rope_scaling {"rope_type": "llama3"}): frequencies whose
// wavelength fits the original context many times stay, those longer than it are slowed by
// `factor`, and a band between is blended. factor == 0 means no rescaling.
struct RopeScaling {
    float factor = 0.0f;                 // 8 in Llama 3.1, 32 in Llama 3.2
    float low_freq_factor = 0.0f;        // 1
    float high_freq_factor = 0.0f;       // 4
    int64_t original_max_positions = 0;  // original_max_position_embeddings: 8192

    TANDEM_HOST_DEVICE bool is_on() const { return factor != 0.0f; }
};

struct RopeParams {
    float theta = 10000.0f;
    RopeScaling scaling;

    // The inverse frequency of pair i < D/2, in radians per position:
    //   f = theta^(-2i/D)
    // and with scaling on (transformers' _compute_llama3_parameters), with wavelen = 2 pi / f,
    // lo = original_max_positions / low_freq_factor, hi = original_max_positions / high_freq_factor:
    //   wavelen < hi          f                      (high frequencies: unchanged)
    //   wavelen > lo          f / factor             (low frequencies: slowed)
    //   otherwise             (1 - s) f / factor + s f,
    //                         s = (original_max_positions / wavelen - low_freq_factor)
    //                             / (high_freq_factor - low_freq_factor)
    // s is 1 at wavelen = hi and 0 at wavelen = lo, so the three bands join continuously.
    // In double: transformers computes this in f32, but every choice of band is continuous.
    TANDEM_HOST_DEVICE double inv_freq(int64_t i, int64_t D) const {
        const double f = pow(double(theta), -2.0 * double(i) / double(D));
        if (!scaling.is_on()) return f;
        const double pi = 3.14159265358979323846;
        const double wavelen = 2.0 * pi / f, old_len = double(scaling.original_max_positions);
        const double factor = scaling.factor, lo_factor = scaling.low_freq_factor,
                     hi_factor = scaling.high_freq_factor;
        if (wavelen < old_len / hi_factor) return f;
        if (wavelen > old_len / lo_factor) return f / factor;
        const double s = (old_len / wavelen - lo_factor) / (hi_factor - lo_factor);
        return (1.0 - s) * f / factor + s * f;
    }
};

}  // namespace tandem::backend

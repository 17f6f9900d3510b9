// Option declarations every subcommand shares: numeric ranges that fail with one plain line
// ("--max-tokens must be ≥ 0, got -5", not CLI11's range of 300-digit numbers) and the text
// inputs (files, directories, `-` for stdin, plain text or JSON Lines) that prepare and the
// tokenizer read the same way.
#pragma once

#include <CLI/CLI.hpp>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "infer/sampler.h"
#include "io/document_reader.h"

namespace tandem::cli {

// A value outside an option's range: a usage error (exit 2) whose message is the whole line.
class OptionRangeError : public CLI::ParseError {
   public:
    explicit OptionRangeError(std::string msg)
        : CLI::ParseError("OptionRangeError", std::move(msg), CLI::ExitCodes::ValidationError) {}
};

// The values an option accepts; an open end excludes its bound.
struct NumberRange {
    double lo = -std::numeric_limits<double>::infinity();
    double hi = std::numeric_limits<double>::infinity();
    bool lo_open = false, hi_open = false;
};

// Checks the option's value against `range` as it is parsed; returns `opt` for chaining.
CLI::Option* check_range(CLI::Option* opt, NumberRange range);
inline CLI::Option* at_least(CLI::Option* opt, double lo) { return check_range(opt, {.lo = lo}); }
inline CLI::Option* positive(CLI::Option* opt) { return check_range(opt, {.lo = 0, .lo_open = true}); }
inline CLI::Option* between(CLI::Option* opt, double lo, double hi) {
    return check_range(opt, {.lo = lo, .hi = hi});
}

// --quant q8_0|q4_0|bf16|f16|f32: the storage dtype of a model's matrices at load
// (infer::load_weights_quantized; norms and biases stay f32). Unset leaves `quant` empty. Any
// other value is a usage error naming the accepted ones.
CLI::Option* add_quant_option(CLI::App* cmd, std::optional<DType>& quant);
// The dtype of a --quant value; throws OptionRangeError naming the value and the accepted ones.
DType parse_quant(const std::string& value);

// --input (repeatable; files, directories read recursively, `-` for stdin), --format,
// --field and --doc-separator.
struct TextInputArgs {
    std::vector<std::string> inputs;
    std::string format = "text";
    io::DocumentFormat document;  // field and separator are written straight into it

    // `document` with --format applied.
    io::DocumentFormat document_format() const;
};

// `input_help` says what the inputs are for; required: --input must be given (else stdin).
void add_text_input_options(CLI::App* cmd, TextInputArgs& args, const std::string& input_help,
                            bool required);

// The inference engine's limits and its KV cache, as generate (and later serve) take them.
struct EngineArgs {
    int64_t max_seqs = 64;            // --max-seqs
    int64_t max_tokens_per_step = 0;  // --max-tokens-per-step; 0: the model's
    int64_t prefill_chunk = 256;      // --prefill-chunk
    int64_t kv_pages = 0;             // --kv-pages; 0: from --kv-memory, else what the work needs
    double kv_memory_mb = 0;          // --kv-memory
    int64_t kv_page_size = 16;        // --kv-page-size, positions per page
    std::string kv_dtype = "f32";     // --kv-dtype
    std::string prefix_cache = "on";  // --prefix-cache on|off
    bool prefix_cache_on() const { return prefix_cache == "on"; }
};

void add_engine_options(CLI::App* cmd, EngineArgs& args);

// --temperature, --top-k, --top-p, --min-p, --repeat-penalty, --seed (seed_help says what a seed
// repeats) and --stop (repeatable), as generate and chat take them; defaults are the values held.
void add_sampling_options(CLI::App* cmd, infer::SamplingParams& sampling,
                          std::vector<std::string>& stop, const std::string& seed_help);

}  // namespace tandem::cli

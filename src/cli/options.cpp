// Shared option checks and the text-input options; see options.h.
#include "cli/options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tandem::cli {

namespace {

// 4194304 rather than 4.1943e+06; 0.999 rather than 0.99899999999999999911.
std::string plain_number(double v) {
    char text[64];
    if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
        std::snprintf(text, sizeof text, "%.0f", v);
    else
        std::snprintf(text, sizeof text, "%g", v);
    return text;
}

// "≥ 0", "> 0 and ≤ 1", "between 257 and 4194304"; ascii: >= and <= (--help aligns its
// columns by bytes).
std::string describe(const NumberRange& r, bool ascii) {
    const bool has_lo = std::isfinite(r.lo), has_hi = std::isfinite(r.hi);
    const std::string lo =
        std::string(r.lo_open ? "> " : ascii ? ">= " : "≥ ") + plain_number(r.lo);
    const std::string hi =
        std::string(r.hi_open ? "< " : ascii ? "<= " : "≤ ") + plain_number(r.hi);
    if (has_lo && has_hi && !r.lo_open && !r.hi_open)
        return "between " + plain_number(r.lo) + " and " + plain_number(r.hi);
    if (has_lo && has_hi) return lo + " and " + hi;
    return has_lo ? lo : hi;
}

}  // namespace

CLI::Option* check_range(CLI::Option* opt, NumberRange range) {
    const std::string name = opt->get_name();
    auto check = [name, range](const std::string& input) -> std::string {
        errno = 0;
        char* end = nullptr;
        const double v = std::strtod(input.c_str(), &end);
        // Not a number at all: CLI11's conversion reports it, naming the option.
        if (input.empty() || *end != '\0' || errno == ERANGE) return {};
        const bool low = range.lo_open ? !(v > range.lo) : !(v >= range.lo);
        const bool high = range.hi_open ? !(v < range.hi) : !(v <= range.hi);
        if (low || high || std::isnan(v))
            throw OptionRangeError(name + " must be " + describe(range, false) + ", got " + input);
        return {};
    };
    return opt->check(CLI::Validator(check, describe(range, true), "range"));
}

DType parse_quant(const std::string& value) {
    for (DType dtype : {DType::Q8_0, DType::Q4_0, DType::BF16, DType::F16, DType::F32})
        if (value == dtype_name(dtype)) return dtype;
    throw OptionRangeError("--quant must be one of q8_0, q4_0, bf16, f16, f32, got " + value);
}

CLI::Option* add_quant_option(CLI::App* cmd, std::optional<DType>& quant) {
    return cmd->add_option_function<std::string>(
        "--quant", [&quant](const std::string& value) { quant = parse_quant(value); },
        "store the weights as q8_0, q4_0, bf16, f16 or f32 (norms and biases stay f32); "
        "quantised from a wider file at load (default: f32)");
}

io::DocumentFormat TextInputArgs::document_format() const {
    io::DocumentFormat f = document;
    f.format = format == "jsonl" ? io::InputFormat::Jsonl : io::InputFormat::Text;
    return f;
}

void add_text_input_options(CLI::App* cmd, TextInputArgs& a, const std::string& input_help,
                            bool required) {
    CLI::Option* input = cmd->add_option(
        "--input", a.inputs,
        input_help + ": files, directories (read recursively, sorted) or - for stdin" +
            (required ? "" : " (default: stdin)"));
    if (required) input->required();
    cmd->add_option("--format", a.format, "text or jsonl")
        ->check(CLI::IsMember({"text", "jsonl"}))
        ->capture_default_str();
    cmd->add_option("--field", a.document.field, "jsonl: the string field holding the document")
        ->capture_default_str();
    cmd->add_option("--doc-separator", a.document.separator,
                    "text: a line equal to this ends a document (e.g. % for fortune files); "
                    "default: each file is one document");
}

void add_engine_options(CLI::App* cmd, EngineArgs& a) {
    between(cmd->add_option("--max-seqs", a.max_seqs, "sequences running at once at most"), 1, 4096)
        ->capture_default_str();
    between(cmd->add_option("--max-tokens-per-step", a.max_tokens_per_step,
                            "tokens of one model step at most (default: the model's limit)"),
            1, 1 << 20);
    between(cmd->add_option("--prefill-chunk", a.prefill_chunk,
                            "prompt tokens of one sequence per step at most"),
            1, 1 << 20)
        ->capture_default_str();
    CLI::Option* pages = between(
        cmd->add_option("--kv-pages", a.kv_pages,
                        "pages in the KV cache (default: what the prompts and --max-tokens need)"),
        1, INT32_MAX);
    positive(cmd->add_option("--kv-memory", a.kv_memory_mb, "KV cache size in MB, instead of --kv-pages"))
        ->excludes(pages);
    between(cmd->add_option("--kv-page-size", a.kv_page_size, "positions per KV page"), 1, 4096)
        ->capture_default_str();
    cmd->add_option("--kv-dtype", a.kv_dtype, "f32 or f16: the keys and values kept per position")
        ->check(CLI::IsMember({"f32", "f16"}))
        ->capture_default_str();
    cmd->add_option("--prefix-cache", a.prefix_cache,
                    "on: sequences share the KV pages of the prompt prefix they have in common")
        ->check(CLI::IsMember({"on", "off"}))
        ->capture_default_str();
}

void add_sampling_options(CLI::App* cmd, infer::SamplingParams& s, std::vector<std::string>& stop,
                          const std::string& seed_help) {
    at_least(cmd->add_option("--temperature", s.temperature, "0 = greedy"), 0)->capture_default_str();
    at_least(cmd->add_option("--top-k", s.top_k, "sample from the k most likely tokens (0 = all)"), 0);
    check_range(cmd->add_option("--top-p", s.top_p, "sample from the smallest set with this much probability"),
                {.lo = 0, .hi = 1, .lo_open = true});
    between(cmd->add_option("--min-p", s.min_p, "drop tokens below min-p times the most likely one's probability"), 0, 1);
    positive(cmd->add_option("--repeat-penalty", s.repetition_penalty, "divide the logits of tokens already seen (1 = off)"));
    at_least(cmd->add_option("--seed", s.seed, seed_help), 0);
    cmd->add_option("--stop", stop, "end the text before this string (repeatable)");
}

}  // namespace tandem::cli

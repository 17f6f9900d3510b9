// Loading the served model: weights as `generate` loads them, the engine sized for the server,
// the chat template and the stop tokens of each endpoint.
#include "serve/served_model.h"

#include <algorithm>
#include <filesystem>

#include "backend/registry.h"
#include "core/error.h"
#include "infer/generate.h"
#include "infer/paged_forward.h"
#include "io/atomic_file.h"

namespace tandem::serve {

namespace {

std::string default_name(const std::string& path) {
    std::filesystem::path p(path);
    while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dir/" names dir
    std::string name = p.filename().string();
    return name.empty() ? path : name;
}

// Pages for max_seqs full contexts, within the memory the options allow, and at least one full
// context: the scheduler refuses a sequence the whole pool could not hold.
int64_t kv_pages(const ServedModelOptions& o, const model::ModelConfig& c, int64_t n_ctx) {
    const int64_t per_seq = (n_ctx + o.kv_page_size - 1) / o.kv_page_size;
    if (o.kv_pages > 0) {
        if (o.kv_pages < per_seq)
            throw Error("--kv-pages ", o.kv_pages, " cannot hold one sequence of --ctx ", n_ctx,
                        " (", per_seq, " pages of ", o.kv_page_size,
                        " positions): raise --kv-pages or lower --ctx");
        return o.kv_pages;
    }
    const double page_mb = 2.0 * double(c.n_layers) * double(o.kv_page_size) *
                           double(c.n_heads_kv * c.head_dim) * double(dtype_size(o.kv_dtype)) / 1e6;
    const double budget = o.kv_memory_mb > 0 ? o.kv_memory_mb : kDefaultKvMemoryMb;
    const auto fit = static_cast<int64_t>(budget / page_mb);
    const int64_t want = o.max_seqs * per_seq;
    if (o.kv_memory_mb > 0 && fit < per_seq)
        throw Error("--kv-memory ", o.kv_memory_mb, " MB cannot hold one sequence of --ctx ", n_ctx,
                    " (", per_seq * page_mb, " MB): raise --kv-memory or lower --ctx");
    return std::max(per_seq, std::min(want, fit));
}

}  // namespace

ServedModel::~ServedModel() = default;

std::unique_ptr<ServedModel> ServedModel::load(const ServedModelOptions& o) {
    std::unique_ptr<ServedModel> m(new ServedModel());
    backend::Backend& be = backend::get_backend(o.device);
    m->loaded_ = infer::load_model(o.path, be, o.quant);
    const model::ModelConfig& c = m->config();
    m->name_ = o.name.empty() ? default_name(o.path) : o.name;
    if (o.n_ctx > c.max_seq_len)
        throw Error("--ctx ", o.n_ctx, " is longer than the ", c.max_seq_len, " positions of ",
                    o.path, ": give at most ", c.max_seq_len);
    m->n_ctx_ = o.n_ctx > 0 ? o.n_ctx : std::min(c.max_seq_len, kDefaultMaxCtx);

    // Chat template first: a template the server cannot use stops it before the weights cost
    // the pool's memory.
    const io::BpeTokenizer& tok = *m->loaded_.tokenizer;
    std::string source = tok.model().chat_template;
    std::string where = o.path + " (tokenizer_config.json chat_template)";
    if (!o.chat_template_path.empty()) {
        source = io::read_file(o.chat_template_path);
        where = "--chat-template " + o.chat_template_path;
    }
    if (!source.empty()) {
        try {
            m->chat_template_ = io::ChatTemplate::recognise(source);
            m->chat_stop_ids_ = m->chat_template_->stop_ids(tok);
        } catch (const Error& e) {
            throw Error(where, ": ", e.what());
        }
    }

    infer::GenerateOptions gen;
    gen.stop_ids = m->loaded_.source->generation().stop_ids;
    m->completion_stop_ids_ = infer::make_request(tok, gen, {0}).stop_ids;

    m->n_kv_pages_ = kv_pages(o, c, m->n_ctx_);
    // A step holds every running sequence's decode token and one prompt chunk, unless told less.
    const int64_t step_rows =
        o.max_tokens_per_step > 0 ? o.max_tokens_per_step : o.prefill_chunk + o.max_seqs;
    m->step_model_ = std::make_unique<infer::PagedForward>(
        *m->loaded_.weights, infer::PagedForwardOptions{
                                 .max_tokens_per_step = step_rows,
                                 .pages = {.n_pages = m->n_kv_pages_, .page_size = o.kv_page_size},
                                 .kv_dtype = o.kv_dtype});
    m->engine_ = std::make_unique<infer::Engine>(
        *m->step_model_, tok,
        infer::EngineOptions{.max_seqs = o.max_seqs,
                             .prefill_chunk = o.prefill_chunk,
                             .prefix_cache = o.prefix_cache});
    return m;
}

std::vector<int32_t> ServedModel::encode_completion_prompt(std::string_view text) const {
    return infer::encode_prompt(tokenizer(), text);
}

std::vector<int32_t> ServedModel::encode_chat(std::span<const io::ChatMessage> messages,
                                              bool enable_thinking) const {
    TANDEM_ASSERT(chat_template_.has_value());
    return tokenizer().encode(chat_template_->render(messages, true, enable_thinking));
}

std::string ServedModel::describe() const {
    return Error::concat(name_, " (", infer::format_name(loaded_.source->format()), " ",
                         loaded_.source->path(), ", ", config().n_layers, " layers, context ",
                         n_ctx_, ", ", n_kv_pages_, " KV pages, chat template ",
                         chat_template_ ? chat_template_->name() : std::string("none"), ")");
}

}  // namespace tandem::serve

// `tandem chat`: a conversation with a model in the terminal, on the inference engine directly.
// Each line read from stdin is a message (or a command: /reset, /exit, /help); the reply streams
// to stdout token by token, and its token count and tokens/s follow on stderr. The prompt is
// the model's chat template over the conversation (serve/conversation.h); Ctrl-C stops a reply.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <unistd.h>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "infer/model_source.h"
#include "infer/paged_forward.h"
#include "serve/conversation.h"

namespace tandem::cli {

namespace {

struct ChatArgs {
    std::string model_path, device = "cpu", system;
    infer::GenerateOptions options;
    int64_t n_context = 0;       // --ctx; 0: the model's, at most kDefaultContext
    int64_t prefill_chunk = 256;  // prompt tokens per step
    std::string kv_dtype = "f32";
    std::optional<DType> quant;
    bool no_thinking = false;  // --no-thinking: Qwen3's enable_thinking=false
};

// The KV cache holds one sequence of the whole context: 4096 positions of Qwen3-0.6B in f32 are
// 0.9 GB, while its full 40,960 would be 9 GB. --ctx asks for more.
constexpr int64_t kDefaultContext = 4096;

// The model's chat template, recognised; a model without one (or with one tandem does not know)
// cannot chat, and the message says where the template was looked for.
io::ChatTemplate chat_template_of(const infer::LoadedModel& loaded) {
    const std::string& source = loaded.tokenizer->model().chat_template;
    const std::string& path = loaded.source->path();
    if (source.empty())
        throw Error(path, ": the model has no chat template (tokenizer_config.json's "
                    "chat_template, or GGUF's tokenizer.chat_template); tandem chat needs a "
                    "ChatML or Llama 3 template (`tandem generate` continues plain text)");
    try {
        return io::ChatTemplate::recognise(source);
    } catch (const Error& e) {
        throw Error(path, ": ", e.what());
    }
}

// Ctrl-C while a reply streams stops that reply; at the chat prompt it ends the program as usual.
volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }

class InterruptGuard {
   public:
    InterruptGuard() {
        g_interrupted = 0;
        struct sigaction action {};
        action.sa_handler = on_interrupt;
        sigemptyset(&action.sa_mask);
        sigaction(SIGINT, &action, &previous_);
    }
    ~InterruptGuard() { sigaction(SIGINT, &previous_, nullptr); }
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;

   private:
    struct sigaction previous_ {};
};

struct Reply {
    std::string text;
    int64_t n_tokens = 0;
    infer::FinishReason finish = infer::FinishReason::None;
    double seconds = 0, seconds_to_first = 0;
};

// Runs one request alone on the engine, streaming its text to stdout as it becomes final.
Reply stream_reply(infer::Engine& engine, infer::Request request) {
    const InterruptGuard guard;
    const auto start = std::chrono::steady_clock::now();
    const auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    Reply reply;
    const infer::RequestId id = engine.submit(std::move(request));
    bool cancelled = false;
    while (engine.has_work()) {
        if (g_interrupted && !cancelled) {
            engine.cancel(id);
            cancelled = true;
        }
        for (const infer::SequenceEvent& e : engine.step()) {
            if (reply.n_tokens == 0 && !e.tokens.empty()) reply.seconds_to_first = elapsed();
            reply.n_tokens += int64_t(e.tokens.size());
            if (!e.text.empty()) {
                std::fwrite(e.text.data(), 1, e.text.size(), stdout);
                std::fflush(stdout);
                reply.text += e.text;
            }
            if (e.finish != infer::FinishReason::None) reply.finish = e.finish;
        }
    }
    reply.seconds = elapsed();
    std::fputc('\n', stdout);
    std::fflush(stdout);
    return reply;
}

void print_stats(const Reply& r, int64_t n_prompt, bool hit_context) {
    const char* why = r.finish == infer::FinishReason::Cancelled ? ", stopped"
                      : r.finish == infer::FinishReason::Length  ? (hit_context ? ", context full"
                                                                                 : ", --max-tokens reached")
                      : r.finish == infer::FinishReason::Context ? ", context full"
                                                                 : "";
    std::fprintf(stderr, "[%lld tokens, %.1f tokens/s, first after %.2f s; prompt %lld tokens%s]\n",
                 (long long)r.n_tokens, r.n_tokens / std::max(r.seconds, 1e-9), r.seconds_to_first,
                 (long long)n_prompt, why);
}

void run_chat(const ChatArgs& a) {
    backend::Backend& be = backend::get_backend(a.device);
    const infer::LoadedModel loaded = infer::load_model(a.model_path, be, a.quant);
    const io::ChatTemplate chat_template = chat_template_of(loaded);
    const io::BpeTokenizer& tokenizer = *loaded.tokenizer;
    const int64_t max_seq_len = loaded.weights->config().max_seq_len;
    if (a.n_context > max_seq_len)
        throw Error("--ctx ", a.n_context, " is longer than the model's context of ", max_seq_len,
                    " positions (", a.model_path, ")");
    const int64_t n_context =
        a.n_context > 0 ? a.n_context : std::min(max_seq_len, kDefaultContext);

    // One sequence at a time: pages for the whole context, a step of a prompt chunk.
    const int64_t page_size = 16;
    infer::PagedForward model(
        *loaded.weights,
        infer::PagedForwardOptions{
            .max_tokens_per_step = a.prefill_chunk + 1,
            .pages = {.n_pages = (n_context + page_size - 1) / page_size, .page_size = page_size},
            .kv_dtype = dtype_from_name(a.kv_dtype)});
    infer::Engine engine(model, tokenizer,
                         // Each turn sends the whole conversation again: the cache keeps its pages.
                         infer::EngineOptions{.max_seqs = 1,
                                              .prefill_chunk = a.prefill_chunk,
                                              .prefix_cache = true});

    infer::GenerateOptions options = a.options;
    options.stop_ids = chat_template.stop_ids(tokenizer);
    for (int32_t id : loaded.source->generation().stop_ids) options.stop_ids.push_back(id);

    serve::Conversation conversation(chat_template, tokenizer, n_context, a.system, !a.no_thinking);
    const bool interactive = ::isatty(STDIN_FILENO);
    std::fprintf(stderr, "tandem chat: %s (%s template, %lld-token context); /help for commands\n",
                 a.model_path.c_str(), chat_template.name().c_str(), (long long)n_context);
    std::string line;
    for (;;) {
        if (interactive) std::fputs("> ", stderr);
        if (!std::getline(std::cin, line)) break;  // end of input ends the chat
        serve::ChatInput input = serve::parse_chat_input(line);
        switch (input.kind) {
            case serve::ChatInputKind::Empty: continue;
            case serve::ChatInputKind::Exit: return;
            case serve::ChatInputKind::Help:
                std::fprintf(stderr, "%s\n", serve::chat_commands_help());
                continue;
            case serve::ChatInputKind::Unknown:
                std::fprintf(stderr, "unknown command %s; %s\n", input.text.c_str(),
                             serve::chat_commands_help());
                continue;
            case serve::ChatInputKind::Reset:
                conversation.reset();
                std::fputs("[new conversation]\n", stderr);
                continue;
            case serve::ChatInputKind::Message: break;
        }
        const int64_t n_dropped = conversation.n_dropped();
        std::vector<int32_t> prompt;
        try {
            prompt = conversation.begin_turn(std::move(input.text), options.max_tokens);
        } catch (const Error& e) {  // a message too long for the context: say so, keep chatting
            std::fprintf(stderr, "[not sent: %s]\n", e.what());
            continue;
        }
        if (conversation.n_dropped() > n_dropped)
            std::fprintf(stderr, "[the oldest %lld exchange(s) no longer fit the context: dropped]\n",
                         (long long)(conversation.n_dropped() - n_dropped));
        const int64_t n_prompt = int64_t(prompt.size());
        // The reply stops at the end of the context (reported as such), not past it.
        const int64_t room = n_context - n_prompt;
        infer::GenerateOptions turn = options;
        turn.max_tokens = std::min(options.max_tokens, room);
        const Reply reply =
            stream_reply(engine, infer::make_request(tokenizer, turn, std::move(prompt)));
        print_stats(reply, n_prompt, turn.max_tokens < options.max_tokens);
        conversation.end_turn(reply.text);
    }
}

}  // namespace

void add_chat_command(CLI::App& app) {
    auto a = std::make_shared<ChatArgs>();
    infer::GenerateOptions& o = a->options;
    o.max_tokens = 512;
    o.sampling.temperature = 0.7f;
    CLI::App* cmd = app.add_subcommand(
        "chat",
        "Chat with a model in the terminal: one message per line, replies streamed; /reset, "
        "/exit (or end of input), /help");
    cmd->add_option("--model", a->model_path, "a tandem run or checkpoint directory, a Hugging Face model directory, or a .gguf file, with a chat template")
        ->required();
    cmd->add_option("--system", a->system, "a system message that opens every conversation");
    cmd->add_flag("--no-thinking", a->no_thinking, "answer without reasoning first (Qwen3's enable_thinking=false; other templates ignore it)");
    at_least(cmd->add_option("--max-tokens", o.max_tokens, "tokens per reply at most"), 1)->capture_default_str();
    add_sampling_options(cmd, o.sampling, o.stop, "random seed: the same seed and messages give the same replies");
    at_least(cmd->add_option("--ctx", a->n_context, "positions the conversation and the reply share (default: the model's, at most 4096); older exchanges are dropped to fit"), 2);
    positive(cmd->add_option("--prefill-chunk", a->prefill_chunk, "prompt tokens run per step"))->capture_default_str();
    cmd->add_option("--kv-dtype", a->kv_dtype, "the KV cache's dtype: f32 or f16")->capture_default_str();
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto")->capture_default_str();
    add_quant_option(cmd, a->quant);
    cmd->callback([a] { run_chat(*a); });
}

}  // namespace tandem::cli

// `tandem eval --model M --task NAME --n 500`: held-out accuracy of a model on a verifiable task
// (rl/evaluate.h), sampled through the inference engine in one batch, greedy by default. Prints
// one line: correct / n, the accuracy with its 95% Wilson interval, the format rate, the mean
// completion length and the rate; --show N adds N problems with their completions.
// `tandem task --task NAME --n N` writes worked examples of a task as JSON Lines ({"text":
// prompt and worked completion}) for `prepare --format jsonl`: the supervised warm-up.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "infer/model_source.h"
#include "nlohmann/json.hpp"
#include "rl/evaluate.h"

namespace tandem::cli {

namespace {

struct EvalArgs {
    std::string model_path, task = "addition:3", device = "cpu";
    int64_t n = 500, max_tokens = 64, show = 0;
    uint64_t seed = 0;
    float temperature = 0;
};

void run_eval(const EvalArgs& a) {
    const auto task = rl::make_task(a.task);
    backend::Backend& be = backend::get_backend(a.device);
    const infer::LoadedModel loaded = infer::load_model(a.model_path, be);
    const int64_t context = loaded.weights->config().max_seq_len;
    rl::RolloutEngine rollout(*loaded.weights, *loaded.tokenizer, std::min<int64_t>(a.n, 64), context);

    const auto start = std::chrono::steady_clock::now();
    const rl::EvalResult r = rl::evaluate_task(
        *rollout.engine, *loaded.tokenizer, *task,
        {.n = a.n, .seed = a.seed, .max_tokens = a.max_tokens, .temperature = a.temperature});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    for (int64_t i = 0; i < std::min(a.show, r.n); ++i)
        std::printf("%s %s\n  %s\n", r.rollouts[i].reward.correct > 0 ? "[right]" : "[wrong]",
                    r.problems[i].question.c_str(), r.rollouts[i].text.c_str());
    std::printf("%s held-out: %lld/%lld correct, accuracy %.1f%% (95%% CI %.1f%% to %.1f%%), "
                "formatted %.1f%%, %.1f tokens per completion, %.1f completions/s\n",
                task->name().c_str(), (long long)r.n_correct, (long long)r.n, 100 * r.accuracy,
                100 * r.interval.low, 100 * r.interval.high, 100.0 * double(r.n_formatted) / double(r.n),
                r.mean_completion_tokens, double(r.n) / std::max(seconds, 1e-9));
}

struct TaskArgs {
    std::string task = "addition:3", split = "train";
    int64_t n = 1000;
    uint64_t seed = 0;
};

void run_task(const TaskArgs& a) {
    const auto task = rl::make_task(a.task);
    if (a.split != "train" && a.split != "held-out")
        throw Error("task: --split ", a.split, " is not train or held-out");
    const rl::Split split = a.split == "train" ? rl::Split::Train : rl::Split::HeldOut;
    for (int64_t i = 0; i < a.n; ++i) {
        const rl::Problem p = task->problem(split, a.seed, uint64_t(i));
        std::puts(nlohmann::json{{"text", task->prompt(p) + task->worked_completion(p)}}.dump().c_str());
    }
}

}  // namespace

void add_task_command(CLI::App& app) {
    auto a = std::make_shared<TaskArgs>();
    CLI::App* cmd = app.add_subcommand("task", "Worked examples of a verifiable task as JSON Lines, for a supervised warm-up");
    cmd->add_option("--task", a->task, "addition[:digits], multiplication[:digits] or countdown[:numbers]")
        ->capture_default_str();
    at_least(cmd->add_option("--n", a->n, "examples")->capture_default_str(), 1);
    cmd->add_option("--split", a->split, "train or held-out")->capture_default_str();
    cmd->add_option("--seed", a->seed, "which problems")->capture_default_str();
    cmd->callback([a] { run_task(*a); });
}

void add_eval_command(CLI::App& app) {
    auto a = std::make_shared<EvalArgs>();
    CLI::App* cmd = app.add_subcommand("eval", "Held-out accuracy of a model on a verifiable task, with a 95% interval");
    cmd->add_option("--model", a->model_path, "a tandem run or checkpoint directory, a Hugging Face model directory, or a .gguf file")
        ->required();
    cmd->add_option("--task", a->task, "addition[:digits], multiplication[:digits] or countdown[:numbers]")
        ->capture_default_str();
    at_least(cmd->add_option("--n", a->n, "held-out problems to score")->capture_default_str(), 1);
    cmd->add_option("--seed", a->seed, "which held-out problems, and the sampling seed")->capture_default_str();
    at_least(cmd->add_option("--max-tokens", a->max_tokens, "tokens per completion at most")->capture_default_str(), 1);
    between(cmd->add_option("--temperature", a->temperature, "0: greedy")->capture_default_str(), 0, 10);
    at_least(cmd->add_option("--show", a->show, "print this many problems with their completions"), 0);
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto")->capture_default_str();
    cmd->callback([a] { run_eval(*a); });
}

}  // namespace tandem::cli

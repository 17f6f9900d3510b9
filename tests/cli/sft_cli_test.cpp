// `tandem sft` as a user runs it: a tiny ChatML model fine-tuned a few steps learns (the loss on
// the assistant's tokens falls, the held-out loss too), the run has what `train` runs have
// (metrics, plot, checkpoints, the anomaly guard), bad lines are refused or skipped with their
// line numbers, and a resumed run ends bitwise where a straight run ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "cli_util.h"
#include "io/atomic_file.h"
#include "io/tokenizer_config.h"
#include "io/tokenizer_files.h"
#include "model/config.h"
#include "train/metrics_log.h"
#include "train/sft_test_util.h"

namespace tandem::testing {
namespace {

// The tiny preset with the ChatML byte tokenizer (259 ids), context 96.
std::string write_chat_model(const TempDir& tmp) {
    model::ModelConfig c = model::preset_config("tiny");
    c.vocab_size = 260;
    c.max_seq_len = 96;
    const std::string dir = tmp.file("model");
    write_hf_dir(dir, c, DType::F32);
    const io::BpeModel tok = chatml_tokenizer();
    io::save_hf_tokenizer_json(tok, dir + "/tokenizer.json");
    io::save_tokenizer_config_json(tok, dir + "/tokenizer_config.json");
    return dir;
}

// n conversations that answer "copy: WORD" with WORD, every third with a system turn, every
// fourth as a prompt/completion line.
std::string copy_task(int n) {
    const char* words[] = {"cab",  "bad",  "dab",  "ace",  "bead",
                           "cafe", "face", "deaf", "fade", "babe"};
    std::string out;
    for (int i = 0; i < n; ++i) {
        const std::string w = std::string(words[i % 10]) + words[(i * 7 + 3) % 10];
        if (i % 4 == 3) {
            out += "{\"prompt\": \"copy: " + w + "\", \"completion\": \"" + w + "\"}\n";
            continue;
        }
        out += "{\"messages\": [";
        if (i % 3 == 0) out += "{\"role\": \"system\", \"content\": \"copy\"}, ";
        out += "{\"role\": \"user\", \"content\": \"copy: " + w +
               "\"}, {\"role\": \"assistant\", \"content\": \"" + w + "\"}]}\n";
    }
    return out;
}

const char* kSmallRun = "batch_size=4 seq_len=64 lr=3e-3 lr_min=3e-4 warmup_steps=2 eval_batches=4";

std::vector<nlohmann::json> step_records(const TempDir& tmp, const std::string& run) {
    std::vector<nlohmann::json> steps;
    for (const auto& r : train::read_metrics(tmp.file(run + "/metrics.jsonl")))
        if (r.contains("loss") && !r.contains("event")) steps.push_back(r);
    return steps;
}

TEST(SftCli, TheLossOnTheAssistantsTokensFalls) {
    TempDir tmp;
    const std::string model = write_chat_model(tmp);
    tmp.write("chat.jsonl", copy_task(80));
    const CliRun r =
        tandem(tmp, "sft --model " + shell_quoted(model) +
                        " --data chat.jsonl --out run steps=40 eval_every=20 " + kSmallRun);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("80 example(s) of 80 line(s); 76 for training"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("4 held out; rendered as chat template chatml"), std::string::npos)
        << r.err;

    const auto steps = step_records(tmp, "run");
    ASSERT_EQ(steps.size(), 40u);
    const double first = steps.front()["loss"].get<double>(),
                 last = steps.back()["loss"].get<double>();
    EXPECT_GT(first, 4.5) << "a random model: about ln(260) = 5.6 per token";
    EXPECT_LT(last, first - 2.5) << "the assistant's tokens are learned";
    std::vector<double> val;
    for (const auto& s : steps)
        if (s.contains("val_loss")) val.push_back(s["val_loss"].get<double>());
    ASSERT_EQ(val.size(), 2u);
    EXPECT_LT(val[1], val[0]);
    EXPECT_LT(val[1], 3.0);
    EXPECT_TRUE(std::filesystem::exists(tmp.file("run/loss.svg")));
    EXPECT_TRUE(std::filesystem::exists(tmp.file("run/checkpoints/step-40/model.safetensors")));
    EXPECT_TRUE(std::filesystem::exists(tmp.file("run/sft.json")));
    // The fine-tuned model keeps its chat template and end of turn.
    const io::BpeModel tok = io::load_tokenizer_model(tmp.file("run/checkpoints/step-40"));
    EXPECT_EQ(tok.chat_template, chatml_tokenizer().chat_template);
    EXPECT_EQ(tok.eos_id, kImEnd);
}

TEST(SftCli, BadLinesAreRefusedOrSkippedWithTheirLineNumbers) {
    TempDir tmp;
    const std::string model = write_chat_model(tmp);
    std::string data = copy_task(12);
    data.insert(data.find('\n', data.find('\n') + 1) + 1,
                "{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}\n");
    data += "{\"prompt\": \"copy: " + std::string(200, 'a') + "\", \"completion\": \"a\"}\n";
    tmp.write("chat.jsonl", data);  // line 3: unknown role; line 14: too long for seq_len 64
    const std::string base =
        "sft --model " + shell_quoted(model) + " --data chat.jsonl steps=2 " + kSmallRun;

    CliRun r = tandem(tmp, base + " --out refused");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("chat.jsonl: 2 bad line(s): chat.jsonl:3: messages[0].role is \"bot\""),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("chat.jsonl:14: 2"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("more than seq_len + 1 = 65"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--bad-lines skip"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(tmp.file("refused/checkpoints")));

    r = tandem(tmp, base + " --out skipped --bad-lines skip");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("chat.jsonl:3: messages[0].role is \"bot\""), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chat.jsonl:14: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("12 example(s) of 14 line(s), 2 bad line(s) skipped"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("2 bad line(s) of chat.jsonl skipped"), std::string::npos) << r.err;
}

TEST(SftCli, TheAnomalyGuardRefusesANanStepAsInTrain) {
    TempDir tmp;
    const std::string model = write_chat_model(tmp);
    tmp.write("chat.jsonl", copy_task(20));
    const CliRun r =
        tandem(tmp, "sft --model " + shell_quoted(model) +
                        " --data chat.jsonl --out run --inject nan@2:loss steps=3 eval_every=0 " +
                        kSmallRun);
    ASSERT_EQ(r.code, 0) << r.err;
    bool is_refused = false;
    for (const auto& record : train::read_metrics(tmp.file("run/metrics.jsonl")))
        is_refused |= record.value("event", "") == "anomaly" && record.value("step", 0) == 2 &&
                      record.value("action", "") == "skip";
    EXPECT_TRUE(is_refused) << io::read_file(tmp.file("run/metrics.jsonl"));
}

TEST(SftCli, AResumedRunEndsBitwiseWhereAStraightRunEnds) {
    TempDir tmp;
    const std::string model = write_chat_model(tmp);
    tmp.write("chat.jsonl", copy_task(30));  // an epoch is a few steps: the resume crosses one
    const std::string base = "sft --model " + shell_quoted(model) +
                             " --data chat.jsonl steps=8 eval_every=4 checkpoint_every=2 " +
                             kSmallRun;
    ASSERT_EQ(tandem(tmp, base + " --out straight").code, 0);
    CliRun r = tandem(tmp, base + " --out split --stop-after 5");
    ASSERT_EQ(r.code, 0) << r.err;
    r = tandem(tmp, "sft --out split --resume");  // model, data and settings from the run
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;

    EXPECT_EQ(io::read_file(tmp.file("straight/checkpoints/step-8/model.safetensors")),
              io::read_file(tmp.file("split/checkpoints/step-8/model.safetensors")));
    const auto a = step_records(tmp, "straight"), b = step_records(tmp, "split");
    ASSERT_EQ(a.size(), 8u);
    ASSERT_EQ(b.size(), 8u);
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i]["loss"].get<double>(), b[i]["loss"].get<double>()) << "step " << i + 1;
        // Evaluated at steps 4 and 8 (and 5 in the split run, where it stopped).
        if (a[i].contains("val_loss"))
            EXPECT_EQ(a[i]["val_loss"].get<double>(), b[i]["val_loss"].get<double>());
    }

    // Resuming on another split or on changed data would not continue the run: refused.
    r = tandem(tmp, "sft --out split --resume steps=10 --val-fraction 0.2");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("--val-fraction 0.2 differs from the run's 0.05"), std::string::npos)
        << r.err;
    tmp.write("chat.jsonl", copy_task(31));
    r = tandem(tmp, "sft --out split --resume steps=10");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("chat.jsonl: changed since the run started"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tandem::testing

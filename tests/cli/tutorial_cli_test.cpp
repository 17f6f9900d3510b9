// docs/TUTORIAL.md as a new user follows it: its four commands, read from the page and run as
// they stand on a folder of .txt files, except that training is cut to seconds.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "common/test_util.h"
#include "io/atomic_file.h"

namespace tandem {
namespace {

using testing::CliRun;
using testing::tandem;

// The lines of the sh block after the tutorial marker that start with "tandem ".
std::vector<std::string> tutorial_commands() {
    const std::string page = io::read_file(testing::test_data_path("../docs/TUTORIAL.md"));
    const size_t marker = page.find("<!-- tutorial:");
    EXPECT_NE(marker, std::string::npos) << "docs/TUTORIAL.md lost its marker";
    const size_t begin = page.find("```sh\n", marker);
    const size_t end = page.find("```\n", begin + 6);
    std::istringstream block(page.substr(begin + 6, end - begin - 6));
    std::vector<std::string> commands;
    for (std::string line; std::getline(block, line);)
        if (line.starts_with("tandem ")) commands.push_back(line.substr(7));
    return commands;
}

TEST(Tutorial, FourCommandsTakeAFolderOfTextToSamples) {
    const std::vector<std::string> commands = tutorial_commands();
    ASSERT_EQ(commands.size(), 4u) << "the tutorial promises four commands";
    testing::TempDir dir;
    // A user's folder: a few plain-text files of different sizes, one in a subfolder.
    for (int f = 0; f < 3; ++f) {
        std::string text;
        for (int i = 0; i < 80 * (f + 1); ++i)
            text += "Once upon a time, in chapter " + std::to_string(f) + ", the fox number " +
                    std::to_string(i) + " ran over the hill to see the old mill by the river.\n";
        dir.write(f == 2 ? "my_texts/more/c.txt" : "my_texts/" + std::to_string(f) + ".txt", text);
    }
    for (std::string command : commands) {
        // The one change from the page: training takes seconds, not minutes.
        if (command.starts_with("train "))
            command += " steps=4 batch_size=2 seq_len=32 warmup_steps=1 eval_every=2 eval_batches=1";
        CliRun r = tandem(dir, command);
        ASSERT_EQ(r.code, 0) << "tandem " << command << "\n" << r.err;
        if (command.starts_with("generate ")) {
            EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
            EXPECT_GT(r.out.size(), std::string("Once upon a time\n").size()) << r.out;
        }
    }
    // The run evaluated: the validation split came from the files' token stream.
    EXPECT_NE(io::read_file(dir.file("runs/mine/metrics.jsonl")).find("val_loss"), std::string::npos);
}

}  // namespace
}  // namespace tandem

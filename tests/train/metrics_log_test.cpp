#include "train/metrics_log.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "train/loss_plot.h"

namespace tandem::train {
namespace {

namespace fs = std::filesystem;

TEST(MetricsLog, ResumeDropsLinesAfterTheCheckpointAndATornLastLine) {
    const fs::path path = fs::temp_directory_path() / ("tandem_metrics_" + std::to_string(::getpid()) + ".jsonl");
    fs::remove(path);
    {
        MetricsLog log(path.string(), 0);
        for (int step = 1; step <= 6; ++step) log.append({{"step", step}, {"loss", 10.0 / step}});
    }
    std::ofstream(path, std::ios::app) << "{\"step\": 7, \"lo";  // killed mid-line
    {
        MetricsLog log(path.string(), 4);
        log.append({{"step", 5}, {"loss", 1.5}});
    }
    auto records = read_metrics(path.string());
    ASSERT_EQ(records.size(), 5u);
    EXPECT_EQ(records.back()["step"], 5);
    EXPECT_DOUBLE_EQ(records.back()["loss"].get<double>(), 1.5);
    fs::remove(path);
}

TEST(LossPlot, DrawsBothSeries) {
    std::vector<nlohmann::json> records = {{{"step", 1}, {"loss", 5.0}},
                                           {{"step", 2}, {"loss", 4.0}, {"val_loss", 4.5}},
                                           {{"step", 3}, {"loss", 3.0}}};
    const std::string svg = render_loss_svg(records);
    EXPECT_EQ(svg.rfind("<svg", 0), 0u);
    EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 5, true);
    EXPECT_NE(svg.find("polyline"), std::string::npos);
    EXPECT_NE(svg.find("<circle"), std::string::npos);
    EXPECT_NE(svg.find("</svg>"), std::string::npos);
    EXPECT_NE(render_loss_svg({}).find("</svg>"), std::string::npos);  // empty log still renders
}

}  // namespace
}  // namespace tandem::train

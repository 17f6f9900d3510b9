// loss.svg: training and validation loss against the step, drawn from metrics records. Plain
// SVG, so any browser shows it and nothing is installed for it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tandem::train {

std::string render_loss_svg(const std::vector<nlohmann::json>& records);

// One line of a metrics chart: the records' numeric `key` against their step.
struct PlotSeries {
    std::string key, label, color;
    bool has_markers = false;  // a circle at each point (sparse series such as val_loss)
};
// The same chart for any metrics (grpo's reward.svg): `title` on top, one polyline per series.
std::string render_metrics_svg(const std::vector<nlohmann::json>& records, const std::string& title,
                               const std::vector<PlotSeries>& series);

}  // namespace tandem::train

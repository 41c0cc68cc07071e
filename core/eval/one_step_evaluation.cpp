// The predict / score / observe loop.
#include "core/eval/one_step_evaluation.hpp"

#include <stdexcept>
#include <string>

namespace kwm::eval {

void run_one_step(SequenceLearner& learner, const Eigen::MatrixXd& inputs,
                  const Eigen::MatrixXd& outputs, const TimeRange& range, bool learn,
                  ForecastMetricsAccumulator* score) {
  if (inputs.rows() != outputs.rows()) {
    throw std::invalid_argument("inputs have " + std::to_string(inputs.rows()) +
                                " rows but outputs " + std::to_string(outputs.rows()));
  }
  if (range.begin < 0 || range.end > outputs.rows() || range.begin > range.end) {
    throw std::invalid_argument("rows [" + std::to_string(range.begin) + ", " +
                                std::to_string(range.end) + ") lie outside a series of " +
                                std::to_string(outputs.rows()) + " steps");
  }
  for (Eigen::Index t = range.begin; t < range.end; ++t) {
    const Eigen::VectorXd u = inputs.row(t).transpose();
    const Eigen::VectorXd y = outputs.row(t).transpose();
    const Prediction prediction = learner.predict(u);
    if (score != nullptr) score->add(prediction, y);
    learner.observe(y, learn);
  }
}

ForecastMetrics evaluate_one_step(SequenceLearner& learner, const Eigen::MatrixXd& inputs,
                                  const Eigen::MatrixXd& outputs, const TimeRange& range,
                                  bool learn) {
  ForecastMetricsAccumulator accumulator(outputs.cols());
  run_one_step(learner, inputs, outputs, range, learn, &accumulator);
  return accumulator.result();
}

}  // namespace kwm::eval

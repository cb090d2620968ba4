#pragma once
/// Everything the library offers, in one include: reading ONNX models, the compiled network and
/// its backward rules, images, .npy files and preprocessing, saliency maps, heatmaps and panels,
/// class models, segmentation and the evaluation measures. Link deepinside::deepinside (CMake) or
/// `pkg-config --libs deepinside`.
#include <deepinside/class_model.hpp>
#include <deepinside/display.hpp>
#include <deepinside/errors.hpp>
#include <deepinside/evaluation.hpp>
#include <deepinside/graph.hpp>
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>
#include <deepinside/rules.hpp>
#include <deepinside/saliency.hpp>
#include <deepinside/segmentation.hpp>
#include <deepinside/tensor.hpp>

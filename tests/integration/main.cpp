// SPDX-License-Identifier: BSD-3-Clause
// main.cpp - CppUTest runner for the integration test programs.
#include <CppUTest/CommandLineTestRunner.h>
#include <CppUTest/MemoryLeakWarningPlugin.h>

int main(int argc, char **argv) {
    // The scenarios fork; a process that leaves through exit() (a
    // supervisor) must not run CppUTest's leak accounting on its copy.
    MemoryLeakWarningPlugin::turnOffNewDeleteOverloads();
    return CommandLineTestRunner::RunAllTests(argc, argv);
}

"""Markers that transformers' common test files use (registered by transformers' own root conftest.py)."""

TRANSFORMERS_MARKERS = {
    "accelerate_tests": "test that requires accelerate",
    "generate": "generation test (transformers' GenerationTesterMixin)",
    "torch_compile_test": "tests torch.compile",
    "torch_export_test": "tests torch.export",
    "onnx_export_test": "tests ONNX export",
    "executorch_export_test": "tests ExecuTorch export",
    "flash_attn_test": "tests flash attention",
    "flash_attn_3_test": "tests flash attention 3",
    "flash_attn_4_test": "tests flash attention 4",
    "timeout": "per-test time limit (honoured only with pytest-timeout)",
}


def pytest_configure(config):
    for name, description in TRANSFORMERS_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")

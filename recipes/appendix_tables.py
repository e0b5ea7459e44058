"""Verbatim cells of the DetCLIPv2 appendix Tables 1–3 (Config → Value), the recipes' specification.

Kept in the repository so the recipe test runs on any clone (docs/method.md explains the table
numbering); where the extracted appendix text is available outside the repository, the test also
checks this copy against it.
"""

TABLE1_PRETRAIN: dict[str, str] = {
    "GPUs (V100)": "32(T)/64(L)",
    "training epochs": "12",
    "loss weight": r"$\alpha = 1, \beta = 2, \lambda = 0.1$",
    "optimizer": "AdamW [11]",
    "optimizer momentum": r"$\beta_1 = 0.9, \beta_2 = 0.999$",
    "lr for image encoder": "2.8e-4(T)/4e-4(L)",
    "lr for text encoder": "2.8e-5(T)/4e-5(L)",
    "weight decay": "0.05",
    "warmup iters": "1000",
    "learning rate schedule": "cosine decay",
    "batch size (det/grounding)": "128(T)/256(L)",
    "batch size (image text pairs)": "6144",
    "input resolution (det/grounding)": "1333 × 800",
    "input resolution (image-text pairs)": "320 × 320",
    "drop path of visual backbone": "0.2",
    "max text token length": "16",
    "# of concepts $M$ (det)": "150",
    "# of concepts $M$ (grounding)": "100",
    "label smooth for contrastive loss": "0.1",
    "augmentation": "multi-scale training, random flip",
}

TABLE2_LVIS_FINETUNE: dict[str, str] = {
    "GPUs (V100)": "16",
    "training epochs": "24",
    "optimizer": "AdamW [11]",
    "optimizer momentum": r"$\beta_1 = 0.9, \beta_2 = 0.999$",
    "lr for image encoder": "4e-5",
    "lr for text encoder": "4e-6",
    "weight decay": "0.05",
    "warmup iters": "1000",
    "learning rate schedule": "cosine decay",
    "batch size": "64",
    "input resolution": "1333 $\\times$ 800",
    "drop path of visual backbone": "0.2",
    "# of concepts $M$": "150",
    "augmentation": "multi-scale training, random flip",
}

TABLE3_ODINW_FINETUNE: dict[str, str] = {
    "GPUs (V100)": "8",
    "maximum training epochs": "250",
    "optimizer": "AdamW [11]",
    "optimizer momentum": r"$\beta_1 = 0.9, \beta_2 = 0.999$",
    "lr for image encoder": "4e-5",
    "lr for text encoder": "4e-7",
    "weight decay": "0.05",
    "warmup iters": "500",
    "learning rate schedule": "auto-step decay",
    "lr decay tolerance $t_1$ (epochs)": "5",
    "training exit tolerance $t_2$ (epochs)": "8",
    "minimum lr to stop decay": "1e-8",
    "batch size": "32",
    "input resolution": "1333 $\\times$ 800",
    "drop path of visual backbone": "0.2",
    "augmentation": "multi-scale training, random flip",
}

TABLES: dict[int, dict[str, str]] = {1: TABLE1_PRETRAIN, 2: TABLE2_LVIS_FINETUNE, 3: TABLE3_ODINW_FINETUNE}

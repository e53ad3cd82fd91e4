"""Write a trained judge back to GGUF, so llama.cpp can serve it like the bundled model.

The new file is the base file with some tensors replaced: every metadata key (architecture,
hyper-parameters, tokenizer, chat template) is copied, tensors that training did not touch are
copied byte for byte in their original quantization, and the trained ones are written as F16
(matrices) or F32 (norm vectors).

llama.cpp stores the q and k projections of llama-architecture models with the rows of each
attention head interleaved differently from Hugging Face (its rotary embedding pairs dimension i
with i+1, Hugging Face pairs i with i+d/2). Hugging Face's GGUF loader undoes that permutation when
it reads a file; here it is applied again, as llama.cpp's own converter does.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_LAYER_TENSORS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GLOBAL_TENSORS = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_NAME = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.weight$")


def hf_name(gguf_name: str) -> str | None:
    """The Hugging Face parameter name of a llama GGUF tensor (None if unknown)."""
    if gguf_name in _GLOBAL_TENSORS:
        return _GLOBAL_TENSORS[gguf_name]
    match = _LAYER_NAME.match(gguf_name)
    if match is None or match.group(2) not in _LAYER_TENSORS:
        return None
    return f"model.layers.{match.group(1)}.{_LAYER_TENSORS[match.group(2)]}.weight"


def llama_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Hugging Face q/k rows -> llama.cpp's order (the converter's `permute`)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def export_gguf(base: Path, out: Path, weights: dict[str, np.ndarray], *,
                name: str | None = None) -> None:
    """Copy `base` to `out`, replacing the tensors named (Hugging Face names) in `weights`."""
    import gguf

    reader = gguf.GGUFReader(str(base))
    arch = str(reader.fields["general.architecture"].contents())
    if arch != "llama":
        raise ValueError(f"only llama-architecture models can be exported, not {arch!r}")
    n_head = int(reader.fields["llama.attention.head_count"].contents())
    n_head_kv = int(reader.fields["llama.attention.head_count_kv"].contents())
    unknown = set(weights) - {hf_name(t.name) for t in reader.tensors}
    if unknown:
        raise ValueError(f"tensors not in {base.name}: {sorted(unknown)[:5]}")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=arch, endianess=reader.endianess)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        value = field.contents()
        if field.name == gguf.Keys.General.NAME and name:
            value = name
        if field.name == gguf.Keys.General.FILE_TYPE:
            continue  # the file now mixes types; llama.cpp reads each tensor's own type
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, value_type, sub_type=sub_type)

    tensors: list[tuple[str, np.ndarray, gguf.GGMLQuantizationType]] = []
    for tensor in reader.tensors:
        new = weights.get(hf_name(tensor.name) or "")
        if new is None:
            tensors.append((tensor.name, tensor.data, tensor.tensor_type))
            continue
        data = np.asarray(new, dtype=np.float32)
        if tensor.name.endswith("attn_q.weight"):
            data = llama_permute(data, n_head)
        elif tensor.name.endswith("attn_k.weight"):
            data = llama_permute(data, n_head_kv)
        if data.ndim == 1:
            tensors.append((tensor.name, data, gguf.GGMLQuantizationType.F32))
        else:
            tensors.append((tensor.name, data.astype(np.float16), gguf.GGMLQuantizationType.F16))
    for tensor_name, data, qtype in tensors:
        writer.add_tensor_info(tensor_name, data.shape, data.dtype, data.nbytes, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, data, _ in tensors:
        writer.write_tensor_data(data, tensor_endianess=reader.endianess)
    writer.close()
    tmp.replace(out)  # rename last: a half-written judge is never loaded

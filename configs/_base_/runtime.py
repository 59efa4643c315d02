# Runtime settings shared by the pipeline configs (the only _base_ level).
device = 'cpu'          # or 'cuda'; the CLI's --device wins
precision = 'fp32'      # 'bf16' / 'fp16' run the models under autocast (CUDA)
batch_size = 1          # images per batch; the CLI's --batch-size wins

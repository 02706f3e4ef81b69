import sys, logging; sys.path.insert(0,'/work/main')
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
from emodetect.train import TrainConfig, train
cfg = TrainConfig(data='/work/shared/data/fer2013/fer2013.csv.gz', out='runs/default', epochs=50, model='vgg_fer', threads=2, resume=True)
print(cfg, flush=True)
print(train(cfg))

# Short alias of pkkd_resnet50_8xb32-150e_in1k.py, e.g. for
#   bash tools/dist_train.sh configs/pkkd/resnet50_imagenet.py 8
#   python tools/test.py configs/pkkd/resnet50_imagenet.py CKPT
# Same settings; its default work dir is work_dirs/resnet50_imagenet.
_base_ = './pkkd_resnet50_8xb32-150e_in1k.py'

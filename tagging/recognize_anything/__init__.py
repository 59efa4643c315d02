"""What the recognize-anything taggers (RAM, RAM++, Tag2Text) share: the Swin image encoder, the tagging
head and its BERT blocks, preprocessing, tag lists, official checkpoint loading and the tagger stage base."""

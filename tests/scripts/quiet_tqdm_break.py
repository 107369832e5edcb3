"""A tqdm loop that breaks at 37/100 and exits 0: an early exit with no cause in sight."""

from tqdm import tqdm

for i in tqdm(range(100), mininterval=0):
    if i == 37:
        break
print("done")

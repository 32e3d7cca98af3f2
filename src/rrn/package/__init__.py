"""The model package: a trained model as a folder anyone can load, and the Hugging Face Hub.

A package holds ``model.safetensors`` (the weights, nothing executable), ``config.json`` (the
model, its classes, how its frames are prepared, how it was trained, which checkpoint it is) and
``README.md`` (its model card). Its modules, lowest layer first:

* :mod:`rrn.package.folder`: the files, written and read (a package read is a checkpoint's
  contents, checked strictly); below :mod:`rrn.checkpoint`, which loads packages through it;
* :mod:`rrn.package.hub`: ``hf://org/name[@revision]`` names, downloading into the Hugging Face
  cache and uploading in one commit (``huggingface_hub``, the optional ``hub`` extra);
* :mod:`rrn.package.card`: the model card, in the Hub's convention (YAML metadata with a
  ``model-index``, then prose);
* :mod:`rrn.package.pack`: a run's checkpoint and its evaluations -> a package
  (``rrn pack``), and onto the Hub (``rrn push``); above :mod:`rrn.checkpoint`;
  :mod:`rrn.package.settings` holds their flags' dataclass (torch-free, for the command line).

Nothing is imported here, so that the checkpoint layer can import the lower modules.
"""

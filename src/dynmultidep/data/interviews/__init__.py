"""The clinical interview corpora, DAIC-WOZ (AVEC 2016/2017) and E-DAIC (AVEC 2019),
read from their releases as they are.

A release holds one archive (or the folder it unpacks to) per session, frame-level
feature files at 100 Hz (audio) and about 30 Hz (video), and split files with the
PHQ-8 labels. Reading one is four steps, each a module:

* :mod:`.release`: find the sessions and open their files, zipped, tarred or unpacked;
* :mod:`.tables` and :mod:`.feature_sets`: parse a feature file and aggregate it per
  second over its valid frames (:mod:`.seconds`), as D-Vlog's features are;
* :mod:`.splits` and :mod:`.transcripts`: the labels, folds and genders, and the
  participant's turns;
* :mod:`.prepare`: all of it once, into a cached folder that the DataModule reads like
  any corpus (``labels.csv`` with the PHQ-8 score, one array per session and modality).

:mod:`.quirks` lists what is known to be odd in each release.
"""

/* Citation links: a 【n】 in an answer is <a class="cite" href="#src-T-N">. Open the turn's
   block in the source panel, scroll the card into view and flash it. Capture phase, because the
   chat component handles link clicks itself. */
(function () {
  function openCard(id) {
    var card = document.getElementById(id);
    if (!card) return false;
    var d = card.closest('details');
    if (d && !d.open) d.open = true;
    document.querySelectorAll('.src-card.active').forEach(function (e) { e.classList.remove('active'); });
    card.classList.add('active');
    card.scrollIntoView({behavior: 'smooth', block: 'center'});
    var q = card.querySelector('mark.quote');
    if (q) { q.classList.remove('flash'); void q.offsetWidth; q.classList.add('flash'); }
    return true;
  }
  /* Keep the status line's elapsed seconds ticking between server updates. */
  var seen = new WeakMap();
  setInterval(function () {
    document.querySelectorAll('#status .status.busy .elapsed').forEach(function (el) {
      if (!seen.has(el)) seen.set(el, Date.now());
      var base = parseFloat(el.getAttribute('data-elapsed') || '0');
      el.textContent = Math.floor(base + (Date.now() - seen.get(el)) / 1000) + ' s';
    });
  }, 500);
  document.addEventListener('click', function (e) {
    var a = e.target && e.target.closest ? e.target.closest('a.cite') : null;
    if (!a) return;
    var href = a.getAttribute('href') || '';
    if (href.charAt(0) !== '#') return;
    e.preventDefault();
    e.stopPropagation();
    openCard(href.slice(1));
  }, true);
})();
